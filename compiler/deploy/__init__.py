"""Deploy a compiled repository on Kubernetes: KServe InferenceService, or Deployment + Service + HPA.

    files = write_deploy(load_manifest(Path("models.yaml")), Target.KSERVE, DeployOptions("s3://b/models"), Path("deploy"))
"""

from compiler.deploy.options import DeployOptions, StorageUri
from compiler.deploy.writer import TARGETS, write_deploy

__all__ = ["TARGETS", "DeployOptions", "StorageUri", "write_deploy"]
