"""`validate`: every rule that needs no model, fast and without torch (the pre-commit hook).

The manifest's schema and release rules (manifest/), and what its sources' paths name (sources/static.py):
the same functions `build` applies, so a manifest that validates fails `build` only on what running the model
reveals.

    loaded = validate_manifest(Path("models.yaml"))     # raises UserError with every problem, located
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from compiler.errors import ManifestError, Problem
from compiler.manifest import LoadedManifest, load_manifest
from compiler.sources.static import source_problems


def validate_manifest(path: Path, allow_paths: Sequence[Path] = ()) -> LoadedManifest:
    loaded = load_manifest(path)
    problems: list[Problem] = []
    for index, model in enumerate(loaded.manifest.models):
        problems.extend(loaded.locate(p, index) for p in source_problems(model, loaded.directory, allow_paths))
    if problems:
        raise ManifestError(problems)
    return loaded
