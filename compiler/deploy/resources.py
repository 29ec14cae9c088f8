"""Pod resources from what the manifest serves: GPUs from the instance groups, memory from the model files."""

from __future__ import annotations

import math
from pathlib import Path

from compiler.manifest import LoadedManifest
from compiler.manifest.schema import ModelSpec
from compiler.repository import layout

GPU = "nvidia.com/gpu"
BASE_MEMORY_MIB = 2048  # tritonserver, the PyTorch backend and CUDA context


def served_specs(loaded: LoadedManifest, variant: str | None) -> list[ModelSpec]:
    return [m.served_as(variant) for m in loaded.manifest.models]


def gpu_count(specs: list[ModelSpec]) -> int:
    """GPUs a pod needs: one per GPU index that a KIND_GPU group names (one when it names none)."""
    indices: set[int] = set()
    wants_gpu = False
    for spec in specs:
        for group in spec.instance_group or []:
            if group.kind == "KIND_GPU":
                wants_gpu = True
                indices.update(group.gpus or [0])
    return max(indices) + 1 if wants_gpu else 0


def memory_request(repository: Path, specs: list[ModelSpec]) -> str:
    """Twice the model files (weights loaded once per instance, plus headroom) above a fixed base, in Mi."""
    total = 0
    for spec in specs:
        count = sum(group.count for group in spec.instance_group or []) or 1
        filename = layout.filename_of_export(spec.export)
        files = sum(p.stat().st_size for p in (Path(repository) / spec.name).glob(f"*/{filename}") if p.is_file())
        total += files * count * 2
    return f"{BASE_MEMORY_MIB + math.ceil(total / 2**20)}Mi"


def resources(repository: Path, specs: list[ModelSpec], cpu: str, memory: str | None) -> dict[str, dict[str, str]]:
    memory = memory or memory_request(repository, specs)
    requests = {"cpu": cpu, "memory": memory}
    limits = {"memory": memory}
    gpus = gpu_count(specs)
    if gpus:
        requests[GPU] = limits[GPU] = str(gpus)
    return {"requests": requests, "limits": limits}
