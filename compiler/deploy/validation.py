"""Check generated objects offline: Kubernetes kinds against the API's JSON schemas (kubernetes-validate),
the InferenceService against the kserve package's generated models. No cluster is needed.

Both libraries are optional at run time (development dependencies): without them `deploy` says it did not
validate, and the tests, which have them, always do.
"""

from __future__ import annotations

import json
from typing import Any

KUBERNETES_VERSION = "1.30.0"  # a version every maintained cluster serves these API groups at


class Invalid(Exception):
    pass


def validate_kubernetes(obj: dict[str, Any], version: str = KUBERNETES_VERSION) -> None:
    import kubernetes_validate

    try:
        kubernetes_validate.validate(json.loads(json.dumps(obj)), version, strict=True)
    except kubernetes_validate.ValidationError as err:
        path = ".".join(str(p) for p in err.path) or "(top)"
        raise Invalid(f"{obj.get('kind')} {path}: {err.message}") from None


def validate_inference_service(obj: dict[str, Any]) -> None:
    """Check the object against kserve's V1beta1InferenceService model (see kserve_models).

    kserve registers the v2 inference protocol's protobuf messages under the same names as tritonclient does,
    so the two cannot be imported into one process: the check runs in a child interpreter.
    """
    import subprocess
    import sys

    if obj.get("apiVersion") != "serving.kserve.io/v1beta1" or obj.get("kind") != "InferenceService":
        raise Invalid(f"not a serving.kserve.io/v1beta1 InferenceService: {obj.get('apiVersion')} {obj.get('kind')}")
    done = subprocess.run([sys.executable, "-m", "compiler.deploy.kserve_models"], input=json.dumps(obj),
                          capture_output=True, text=True, timeout=300)
    if done.returncode == 2:
        raise Invalid(done.stdout.strip())
    if done.returncode != 0:
        raise ImportError(f"kserve models unavailable: {done.stderr.strip().splitlines()[-1:]}")


def validate(obj: dict[str, Any]) -> None:
    if obj.get("kind") == "InferenceService":
        validate_inference_service(obj)
    else:
        validate_kubernetes(obj)
