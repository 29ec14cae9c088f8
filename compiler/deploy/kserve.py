"""A KServe InferenceService serving the repository with the Triton runtime over protocol v2."""

from __future__ import annotations

from typing import Any

from compiler.deploy.kubernetes import packages_installer
from compiler.deploy.needs import PACKAGES_MOUNT, ServerNeeds
from compiler.deploy.options import DeployOptions


def _metadata(options: DeployOptions, name: str) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if options.namespace:
        metadata["namespace"] = options.namespace
    return metadata


def inference_service(options: DeployOptions, release: str, resources: dict[str, dict[str, str]],
                      needs: ServerNeeds | None = None) -> dict[str, Any]:
    assert options.storage_uri is not None  # checked by the caller: KServe pulls the repository from storage
    model: dict[str, Any] = {
        "modelFormat": {"name": "triton"},
        "protocolVersion": "v2",
        "runtimeVersion": f"{release}-py3",  # the tritonserver image tag of the target release
        "storageUri": options.storage_uri.kserve_uri,
        "resources": resources,
    }
    needs = needs or ServerNeeds()
    args = ([f"--model-config-name={options.variant}"] if options.variant else []) + needs.arguments
    if args:
        model["args"] = args
    environment = [{"name": key, "value": value} for key, value in sorted(needs.environment.items())]
    init = packages_installer(needs, release)
    if init:
        environment.append({"name": "PYTHONPATH", "value": PACKAGES_MOUNT})
        model["volumeMounts"] = [{"name": "pipeline-packages", "mountPath": PACKAGES_MOUNT, "readOnly": True}]
    if environment:  # the predictor's model is a container spec: its env reaches tritonserver
        model["env"] = environment
    # KServe's storage initializer finds the S3 credentials (and the endpoint of an S3-compatible
    # server, in the secret's annotations) through the predictor's service account.
    predictor: dict[str, Any] = {"minReplicas": options.replicas, "maxReplicas": options.ceiling,
                                 "serviceAccountName": options.s3_secret, "model": model}
    if init:  # the predictor is a pod spec too: the init container fills the volume the server reads
        predictor["initContainers"] = init
        predictor["volumes"] = [{"name": "pipeline-packages", "emptyDir": {}}]
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": _metadata(options, options.name),
        "spec": {"predictor": predictor},
    }


def service_account(options: DeployOptions) -> dict[str, Any]:
    """The service account KServe reads S3 credentials through; the secret itself holds keys and is made by hand."""
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _metadata(options, options.s3_secret),
            "secrets": [{"name": options.s3_secret}]}
