"""Deploy a compiled repository on Kubernetes: KServe InferenceService, or Deployment + Service + HPA.

    deployed = write_deploy(load_manifest(Path("models.yaml")), Target.KSERVE, DeployOptions("s3://b/models"), Path("deploy"))
"""

from compiler.deploy.options import DeployOptions, StorageUri
from compiler.deploy.writer import TARGETS, Deployed, write_deploy

__all__ = ["TARGETS", "Deployed", "DeployOptions", "StorageUri", "write_deploy"]
