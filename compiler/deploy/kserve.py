"""A KServe InferenceService serving the repository with the Triton runtime over protocol v2."""

from __future__ import annotations

from typing import Any

from compiler.deploy.options import DeployOptions


def inference_service(options: DeployOptions, release: str, resources: dict[str, dict[str, str]]) -> dict[str, Any]:
    assert options.storage_uri is not None  # checked by the caller: KServe pulls the repository from storage
    metadata: dict[str, Any] = {"name": options.name}
    if options.namespace:
        metadata["namespace"] = options.namespace
    model: dict[str, Any] = {
        "modelFormat": {"name": "triton"},
        "protocolVersion": "v2",
        "runtimeVersion": f"{release}-py3",  # the tritonserver image tag of the target release
        "storageUri": options.storage_uri.kserve_uri,
        "resources": resources,
    }
    if options.variant:
        model["args"] = [f"--model-config-name={options.variant}"]
    # KServe's storage initializer finds the S3 credentials (and the endpoint of an S3-compatible
    # server, in the secret's annotations) through the predictor's service account.
    predictor: dict[str, Any] = {"minReplicas": options.replicas, "maxReplicas": options.ceiling,
                                 "serviceAccountName": secret_name(options), "model": model}
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": metadata,
        "spec": {"predictor": predictor},
    }


def secret_name(options: DeployOptions) -> str:
    return f"{options.name}-s3"


def service_account(options: DeployOptions) -> dict[str, Any]:
    """The service account KServe reads S3 credentials through; the secret itself holds keys and is made by hand."""
    metadata: dict[str, Any] = {"name": secret_name(options)}
    if options.namespace:
        metadata["namespace"] = options.namespace
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata,
            "secrets": [{"name": secret_name(options)}]}
