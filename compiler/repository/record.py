"""The build record: ``<model>/build.json``, what the build proved about a model.

Written by `build`, read by `build` (fingerprints), `check` (the saving torch, the traced dtypes) and `verify`
(which manifest built the repository, at which sizes the export was proved). Triton ignores plain files in a
model folder, so the record travels with the repository.

    write_record(folder, {"fingerprint": "...", ...})
    (read_record(folder) or {}).get("torch_version")
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from compiler.manifest.schema import OutputSpec

RECORD = "build.json"


def record_path(folder: Path) -> Path:
    return Path(folder) / RECORD


def read_record(folder: Path) -> dict[str, Any] | None:
    """The record of a model folder, or None when it has none (a repository we did not build) or it is unreadable."""
    try:
        data = json.loads(record_path(folder).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def built_from(repository: Path) -> tuple[Path | None, str | None]:
    """The manifest that built `repository` and its target release, as our build records say (None where they
    do not, or disagree, or the manifest is gone)."""
    manifests, releases = set(), set()
    folders = [p for p in Path(repository).iterdir() if p.is_dir() and not p.name.startswith(".")] \
        if Path(repository).is_dir() else []
    for folder in folders:
        record = read_record(folder) or {}
        if record.get("manifest"):
            manifests.add(str(record["manifest"]))
        if record.get("triton_version"):
            releases.add(str(record["triton_version"]))
    manifest = Path(next(iter(manifests))) if len(manifests) == 1 else None
    return (manifest if manifest is not None and manifest.is_file() else None,
            next(iter(releases)) if len(releases) == 1 else None)


def write_record(folder: Path, record: dict[str, Any]) -> Path:
    """Written beside, then renamed over: a hard-linked copy (a kept or previous tree) keeps its own."""
    import os

    path = record_path(folder)
    temporary = path.with_name(f".{RECORD}.tmp")
    temporary.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    os.replace(temporary, path)
    return path


def recorded_outputs(repository: Path, names: Iterable[str]) -> dict[str, list[OutputSpec]]:
    """Model name -> the outputs its build recorded (what a pipeline's wiring reads a model's tensors from)."""
    from compiler.manifest.schema import OutputSpec

    return {name: [OutputSpec.model_validate(o) for o in (read_record(repository / name) or {}).get("outputs") or []]
            for name in names}
