"""What a deployment needs beyond the manifest: where the repository lives, how many replicas, a name."""

from __future__ import annotations

import re
from dataclasses import dataclass

from compiler.deploy.storage_uri import StorageUri
from compiler.errors import Problem, UserError

DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class DeployOptions:
    storage_uri: StorageUri | None = None
    replicas: int = 1
    max_replicas: int | None = None
    name: str = "triton"
    namespace: str | None = None
    variant: str | None = None
    cpu: str = "2"
    memory: str | None = None  # default: from the size of the model files

    def __post_init__(self) -> None:
        if not DNS_LABEL.match(self.name):
            raise UserError(Problem(f"'{self.name}' is not a Kubernetes name", field="--name",
                                    hint="lower-case letters, digits and '-', starting with a letter, 63 at most"))
        if self.replicas < 1:
            raise UserError(Problem("--replicas must be 1 or more", field="--replicas"))
        if self.max_replicas is not None and self.max_replicas < self.replicas:
            raise UserError(Problem(f"--max-replicas {self.max_replicas} is below --replicas {self.replicas}",
                                    field="--max-replicas"))

    @property
    def s3_secret(self) -> str:
        """The Secret holding the S3 credentials (made by hand), for KServe's service account and the Deployment."""
        return f"{self.name}-s3"

    @property
    def ceiling(self) -> int:
        return self.max_replicas or max(self.replicas * 4, self.replicas + 1)
