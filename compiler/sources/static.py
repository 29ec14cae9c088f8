"""What can be known about a model's source without running anything: the path policy and the files it names.

`validate` (the pre-commit hook, no torch) and `build` apply these same rules; loading the source uses the same
functions, so a path is judged in one place.

    problems = source_problems(model, manifest_dir, allow=())   # [] when every path resolves to what it should
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from compiler.errors import Problem, SourceError
from compiler.manifest.schema import (
    ModelSpec,
    PackageSource,
    PythonSource,
    TorchscriptSource,
    TorchvisionSource,
    TransformersSource,
)
from compiler.sources.paths import PathNotFound, is_package_path, resolve_path


def fail(model: ModelSpec, field: str, message: str, hint: str | None = None) -> SourceError:
    return SourceError(Problem(message, model=model.name, field=f"source.{field}", hint=hint))


def existing_file(model: ModelSpec, field: str, text: str, base: Path, allow: Sequence[Path]) -> Path:
    try:
        path = resolve_path(text, base, allow)
    except PathNotFound as err:
        raise fail(model, field, str(err), getattr(err, "hint", None)) from None
    if not path.is_file():
        raise fail(model, field, f"file not found: {path}", hint=f"fix the path (relative paths start at {base})")
    return path


def is_local_transformers(target: str, base: Path) -> bool:
    """A folder (package://, a path, or an existing name beside the manifest) rather than a hub id."""
    return is_package_path(target) or target.startswith((".", "/", "~")) or (base / target).exists()


def transformers_folder(model: ModelSpec, source: TransformersSource, base: Path, allow: Sequence[Path]) -> Path | None:
    """The local model folder of a transformers source, checked; None for a hub id."""
    target = source.transformers
    if not is_local_transformers(target, base):
        return None
    try:
        folder = resolve_path(target, base, allow)
    except PathNotFound as err:
        raise fail(model, "transformers", str(err), getattr(err, "hint", None)) from None
    if not (folder / "config.json").is_file():
        raise fail(model, "transformers", f"{folder} is not a transformers model folder (no config.json)")
    return folder


def source_problems(model: ModelSpec, base: Path, allow: Sequence[Path] = ()) -> list[Problem]:
    source = model.source
    checks: list[Callable[[], object]] = []
    if isinstance(source, (TorchvisionSource, PythonSource)) and source.weights:
        weights = source.weights
        checks.append(lambda: existing_file(model, "weights", weights, base, allow))
    if isinstance(source, TorchscriptSource):
        checks.append(lambda: existing_file(model, "torchscript", source.torchscript, base, allow))
    if isinstance(source, PackageSource):
        checks.append(lambda: existing_file(model, "pt2", source.pt2, base, allow))
    if isinstance(source, TransformersSource):
        checks.append(lambda: transformers_folder(model, source, base, allow))
    problems = []
    for check in checks:
        try:
            check()
        except SourceError as err:
            problems.extend(err.problems)
    return problems
