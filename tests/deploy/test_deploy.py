"""deploy: manifests for KServe and plain Kubernetes, validated offline against their schemas."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from compiler.deploy.validation import Invalid, validate, validate_inference_service, validate_kubernetes
from tests.helpers import ROOT, run_cli

MANIFEST = Path(__file__).parent / "models.yaml"  # 24.10, with a gpu variant: what deploy derives from both


def _load(path: Path) -> dict[str, Any]:
    return dict(YAML(typ="safe").load(path.read_text()))


def _deploy(tmp_path: Path, *args: str) -> dict[str, dict[str, Any]]:
    out = tmp_path / "deploy"
    result = run_cli("deploy", "--manifest", str(MANIFEST), "--repository", str(ROOT / "Triton" / "models"),
                     "--out", str(out), *args)
    assert result.code == 0, result.err
    assert "validated offline" in result.out
    target = args[args.index("--target") + 1]
    return {p.name: _load(p) for p in sorted((out / target).glob("*.yaml"))}


def test_kserve_inference_service(tmp_path: Path) -> None:
    files = _deploy(tmp_path, "--target", "kserve", "--storage-uri", "s3://models-bucket/triton", "--replicas", "2",
                    "--variant", "gpu", "--name", "encoders")
    assert set(files) == {"inferenceservice.yaml", "serviceaccount.yaml"}
    isvc = files["inferenceservice.yaml"]
    for obj in files.values():
        validate(obj)
    predictor = isvc["spec"]["predictor"]
    model = predictor["model"]
    assert model["modelFormat"] == {"name": "triton"} and model["protocolVersion"] == "v2"
    assert model["storageUri"] == "s3://models-bucket/triton"
    assert model["runtimeVersion"] == "24.10-py3"  # the manifest's release
    assert model["resources"]["limits"]["nvidia.com/gpu"] == "1"  # resnet's gpu variant asks KIND_GPU
    assert model["args"] == ["--model-config-name=gpu"]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (2, 8)
    assert predictor["serviceAccountName"] == files["serviceaccount.yaml"]["metadata"]["name"]


def test_no_gpu_is_requested_when_no_instance_group_asks_for_one(tmp_path: Path) -> None:
    files = _deploy(tmp_path, "--target", "kserve", "--storage-uri", "s3://b/p", "--variant", "cpu")
    resources = files["inferenceservice.yaml"]["spec"]["predictor"]["model"]["resources"]
    assert "nvidia.com/gpu" not in resources["requests"] and "nvidia.com/gpu" not in resources["limits"]


def test_plain_kubernetes_deployment_service_and_autoscaler(tmp_path: Path) -> None:
    files = _deploy(tmp_path, "--target", "k8s", "--storage-uri", "s3://minio.local:9000/models/triton",
                    "--replicas", "3", "--max-replicas", "5")
    assert set(files) == {"deployment.yaml", "service.yaml", "hpa.yaml"}
    for obj in files.values():
        validate_kubernetes(obj)
    deployment = files["deployment.yaml"]
    pod = deployment["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert container["image"] == "nvcr.io/nvidia/tritonserver:24.10-py3"
    assert "--model-repository=s3://minio.local:9000/models/triton" in container["args"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert pod["spec"].get("restartPolicy", "Always") == "Always"  # a Deployment's pods are started again
    metrics_port = next(p["containerPort"] for p in container["ports"] if p["name"] == "metrics")
    assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(metrics_port)
    assert deployment["spec"]["replicas"] == 3
    service_ports = {p["name"] for p in files["service.yaml"]["spec"]["ports"]}
    assert service_ports == {"http", "grpc", "metrics"}
    assert files["service.yaml"]["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    hpa = files["hpa.yaml"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 5)


def test_without_storage_the_repository_comes_from_a_volume(tmp_path: Path) -> None:
    files = _deploy(tmp_path, "--target", "k8s")
    spec = files["deployment.yaml"]["spec"]["template"]["spec"]
    assert "--model-repository=/models" in spec["containers"][0]["args"]
    claims = [v["persistentVolumeClaim"]["claimName"] for v in spec["volumes"] if "persistentVolumeClaim" in v]
    assert claims == ["triton-models"]


def test_validators_catch_what_a_cluster_would_refuse(tmp_path: Path) -> None:
    files = _deploy(tmp_path, "--target", "kserve", "--storage-uri", "s3://b/p")
    isvc = files["inferenceservice.yaml"]
    typo = copy.deepcopy(isvc)
    typo["spec"]["predictor"]["model"]["storageURI"] = typo["spec"]["predictor"]["model"].pop("storageUri")
    with pytest.raises(Invalid, match="unknown field.*storageURI"):
        validate_inference_service(typo)
    wrong_type = copy.deepcopy(isvc)
    wrong_type["spec"]["predictor"]["minReplicas"] = "two"
    with pytest.raises(Invalid, match="minReplicas"):
        validate_inference_service(wrong_type)
    no_predictor = copy.deepcopy(isvc)
    del no_predictor["spec"]["predictor"]
    with pytest.raises(Invalid):
        validate_inference_service(no_predictor)
    deployment = _deploy(tmp_path, "--target", "k8s")["deployment.yaml"]
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"] = []
    with pytest.raises(Invalid, match="readinessProbe"):
        validate_kubernetes(deployment)


def test_user_errors(tmp_path: Path) -> None:
    base = ["deploy", "--manifest", str(ROOT / "models.yaml"), "--out", str(tmp_path)]
    missing = run_cli(*base, "--target", "kserve")
    assert missing.code == 1 and "--storage-uri is required" in missing.err
    bad_uri = run_cli(*base, "--target", "k8s", "--storage-uri", "gs://b/p")
    assert bad_uri.code == 1 and "is not an s3:// URI" in bad_uri.err
    bad_name = run_cli(*base, "--target", "k8s", "--name", "Triton_Server")
    assert bad_name.code == 1 and "is not a Kubernetes name" in bad_name.err
    bad_variant = run_cli(*base, "--target", "k8s", "--variant", "tpu")
    assert bad_variant.code == 1 and "no model declares the variant 'tpu'" in bad_variant.err
