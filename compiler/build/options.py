"""How a build runs: the flags of `build`, in one frozen object.

    build(Path("models.yaml"), Path("Triton/models"), options=BuildOptions(force=True, cross_proof=False))
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class BuildOptions:
    """How `build` runs: the CLI's flags, one object from the command down to each model (and into a toolchain's
    build, by its request)."""

    force: bool = False  # export every model even if its fingerprint is unchanged (--force)
    allow_paths: tuple[Path, ...] = ()  # folders outside the manifest's that its paths may point into (--allow-path)
    cross_proof: bool = True  # prove each file again in the target image's torch (--no-cross-proof turns it off)
