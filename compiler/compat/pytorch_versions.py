"""The PyTorch (libtorch) version inside each tritonserver release.

Source: NVIDIA's Deep Learning Frameworks Support Matrix
(https://docs.nvidia.com/deeplearning/frameworks/support-matrix/index.html)
and the PyTorch container release notes it links. Triton's PyTorch backend is
built against the NGC PyTorch container of the same release (pytorch_backend's
build takes `nvcr.io/nvidia/pytorch:<yy.mm>-py3` as TRITON_PYTORCH_DOCKER_IMAGE),
so tritonserver:<yy.mm>-py3 runs that container's libtorch. The trtllm
compatibility table in Triton's user guide (introduction/compatibility.html)
agrees where the two overlap. NGC builds are pre-releases of the next
upstream version ("2.5.0a0+e000cf0"): only major.minor is kept here, which is
what forward compatibility turns on.

Add a row when NVIDIA publishes a release; a release missing from the table is
reported as unknown, never guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from compiler.releases import Release

#: NGC release -> PyTorch version in its tritonserver-py3 image (major.minor).
LIBTORCH_BY_RELEASE: dict[str, str] = {
    "22.01": "1.11", "22.02": "1.11", "22.03": "1.12", "22.04": "1.12", "22.05": "1.12",
    "22.06": "1.13", "22.07": "1.13", "22.08": "1.13", "22.09": "1.13", "22.10": "1.13", "22.11": "1.13",
    "22.12": "1.14", "23.01": "1.14", "23.02": "1.14",
    "23.03": "2.0", "23.04": "2.1", "23.05": "2.0",
    "23.06": "2.1", "23.07": "2.1", "23.08": "2.1", "23.09": "2.1", "23.10": "2.1",
    "23.11": "2.2", "23.12": "2.2", "24.01": "2.2",
    "24.02": "2.3", "24.03": "2.3", "24.04": "2.3",
    "24.05": "2.4", "24.06": "2.4", "24.07": "2.4",
    "24.08": "2.5", "24.09": "2.5", "24.10": "2.5",
    "24.11": "2.6", "24.12": "2.6", "25.01": "2.6",
    "25.02": "2.7", "25.03": "2.7", "25.04": "2.7",
    "25.05": "2.8", "25.06": "2.8", "25.08": "2.8",
    "25.09": "2.9", "25.10": "2.9",
    # NGC PyTorch release notes 25.12: "PyTorch container image version 25.12 is based on 2.10.0a0+b4e4ee81d3".
    "25.12": "2.10",
    # AITune's README, install table: `nvcr.io/nvidia/pytorch:26.01-py3` -> 2.10a0.
    "26.01": "2.10",
    # pytorch_backend's README, branch r26.04: "the 26.02 release of Triton ... supports PyTorch version 2.11.0a0".
    "26.02": "2.11",
    # AITune's README, install table: 26.03 -> 2.11a0.
    "26.03": "2.11",
    # pytorch_backend's README, branch r26.05 and main: "the 26.04 release ... 2.12.0a0".
    "26.04": "2.12",
    # AITune's README, install table: 26.05 -> 2.12a0.
    "26.05": "2.12",
    # 25.11 and 26.06 to 26.11: not in the sources we could read here; left out (reported as unknown), never guessed.
}

_VERSION = re.compile(r"^(\d+)\.(\d+)")


@dataclass(frozen=True, order=True)
class TorchVersion:
    major: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> TorchVersion:
        match = _VERSION.match(str(text).strip())
        if not match:
            raise ValueError(f"'{text}' is not a PyTorch version")
        return cls(int(match.group(1)), int(match.group(2)))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


def libtorch_of(release: Release) -> TorchVersion | None:
    text = LIBTORCH_BY_RELEASE.get(str(release))
    return TorchVersion.parse(text) if text else None


def first_release_with_at_least(version: TorchVersion) -> Release | None:
    """The oldest release from which every later release ships libtorch >= `version`."""
    ordered = sorted((Release.parse(r), TorchVersion.parse(v)) for r, v in LIBTORCH_BY_RELEASE.items())
    found = None
    for release, shipped in reversed(ordered):
        if shipped < version:
            break
        found = release
    return found


def newest_known() -> tuple[Release, TorchVersion]:
    release = max(Release.parse(r) for r in LIBTORCH_BY_RELEASE)
    return release, TorchVersion.parse(LIBTORCH_BY_RELEASE[str(release)])


def running_torch() -> TorchVersion | None:
    """The torch of this environment (None without one)."""
    import importlib.metadata

    try:
        return TorchVersion.parse(importlib.metadata.version("torch"))
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return None


def target_torch(release: Release, declared: str | None) -> TorchVersion | None:
    """The torch the target image ships: the release table's, else the manifest's `target_torch`, else unknown."""
    shipped = libtorch_of(release)
    if shipped is not None:
        return shipped
    return TorchVersion.parse(declared) if declared else None
