"""How a build runs: the flags of `build`, in one frozen object.

    build(Path("models.yaml"), Path("Triton/models"), options=BuildOptions(force=True, cross_proof=False))
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class BuildOptions:
    """How `build` runs: the CLI's flags, one object from the command down to each model (and into a toolchain's
    build, by its request)."""

    force: bool = False  # export every model even if its fingerprint is unchanged (--force)
    allow_paths: tuple[Path, ...] = ()  # folders outside the manifest's that its paths may point into (--allow-path)
    cross_proof: bool = True  # prove each file again in the target image's torch (--no-cross-proof turns it off)

    def to_request(self) -> dict[str, Any]:
        """As JSON, for a toolchain's build (build/toolchain.py), which makes them again with from_request."""
        return {"force": self.force, "allow_paths": [str(p) for p in self.allow_paths], "cross_proof": self.cross_proof}

    @classmethod
    def from_request(cls, given: dict[str, Any]) -> BuildOptions:
        return cls(given["force"], tuple(Path(p) for p in given["allow_paths"]), given["cross_proof"])
