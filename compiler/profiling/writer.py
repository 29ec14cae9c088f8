"""Write the profiling files of every model beside the repository (never inside it: Triton would take a
folder there for a model)."""

from __future__ import annotations

import json
import os
import re
import shlex
from io import StringIO
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from compiler.manifest import LoadedManifest
from compiler.manifest.schema import ModelSpec
from compiler.profiling.data import input_data, shape_flags

CONCURRENCY = [1, 2, 4, 8, 16]


def profiling_folder(repository: Path) -> Path:
    """Beside the repository, one per repository: `Triton/profiling` for `Triton/models`, `<name>.profiling` for
    any other, so that two repositories in one folder do not share (and overwrite) their files."""
    repository = Path(repository)
    return repository.parent / ("profiling" if repository.name == "models" else f"{repository.name}.profiling")


def yaml_text(data: dict[str, Any]) -> str:
    """YAML in block style, as Model Analyzer's configs and our snippets are written."""
    yaml = YAML()
    yaml.default_flow_style = False
    buffer = StringIO()
    yaml.dump(data, buffer)
    return buffer.getvalue()


def _write_if_changed(path: Path, text: str) -> bool:
    if path.is_file() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)
    return True


def perf_analyzer_commands(model: ModelSpec, data_path: Path) -> list[list[str]]:
    """One perf_analyzer run per concurrency of CONCURRENCY (powers of two): its --concurrency-range steps
    linearly (1:16:2 would be 1, 3, 5, ...), so each level is its own run."""
    return [perf_analyzer_command(model, data_path, level) for level in CONCURRENCY]


def perf_analyzer_command(model: ModelSpec, data_path: Path, concurrency: int) -> list[str]:
    command = ["perf_analyzer", "-m", model.name, "--input-data", str(data_path)]
    for flag in shape_flags(model):
        command += ["--shape", flag]
    if model.max_batch_size > 0:
        command += ["-b", "1"]
    command += ["--concurrency-range", f"{concurrency}:{concurrency}", "-i", "grpc", "-u", "localhost:8001"]
    return command


def _kind(model: ModelSpec) -> str:
    """The instance kind to sweep: the model's own, else KIND_GPU (Model Analyzer runs where the GPUs are)."""
    kinds = [group.kind for group in model.instance_group or [] if group.kind in ("KIND_CPU", "KIND_GPU")]
    return kinds[0] if kinds else "KIND_GPU"


def model_analyzer_config(model: ModelSpec, repository: Path, data_path: Path) -> dict[str, object]:
    flags: dict[str, object] = {"input-data": str(data_path)}
    shapes = shape_flags(model)
    if shapes:
        flags["shape"] = shapes
    profile: dict[str, object] = {
        "perf_analyzer_flags": flags,
        "parameters": {"concurrency": CONCURRENCY, "batch_sizes": [1]},
    }
    if model.max_batch_size > 0:
        sizes = sorted({size for size in (1, 4, 8, 16, 32, model.max_batch_size) if size <= model.max_batch_size})
        profile["model_config_parameters"] = {
            "max_batch_size": sizes,
            "dynamic_batching": {"max_queue_delay_microseconds": [0, 100, 500]},
            "instance_group": [[{"kind": _kind(model), "count": count}] for count in (1, 2)],
        }
    return {
        "model_repository": str(repository),
        "run_config_search_disable": True,
        "profile_models": {model.name: profile},
    }


STAMP = ".built-from"  # the build fingerprint and repository the files were made for


def write_profiling(loaded: LoadedManifest, repository: Path, fingerprints: dict[str, str] | None = None) -> list[Path]:
    """Write the profiling files of models whose build changed; returns the files written.

    `fingerprints` are the build's (they cover the manifest entry and the compiler): when a model's and the
    repository path are what its files were made from, nothing is generated (a no-op build stays fast).
    """
    folder = profiling_folder(repository)
    changed = []
    _prune(folder, {model.name for model in loaded.manifest.models}, Path(repository).resolve())
    for model in loaded.manifest.models:
        target = folder / model.name
        stamp = f"{(fingerprints or {}).get(model.name)}\n{Path(repository).resolve()}\n"
        files = [target / name for name in ("input_data.json", "perf_analyzer.txt", "model_analyzer.yaml")]
        if (target / STAMP).is_file() and (target / STAMP).read_text() == stamp and all(f.is_file() for f in files):
            continue
        data_path = target / "input_data.json"
        text = json.dumps(input_data(model, loaded.directory), separators=(",", ":")) + "\n"
        if _write_if_changed(data_path, text):
            changed.append(data_path)
        commands = "".join(" ".join(shlex.quote(part) for part in command) + "\n"
                           for command in perf_analyzer_commands(model, data_path))
        if _write_if_changed(target / "perf_analyzer.txt", commands):
            changed.append(target / "perf_analyzer.txt")
        header = f"# Model Analyzer profile config for {model.name}: model-analyzer profile -f {target / 'model_analyzer.yaml'}\n"
        if _write_if_changed(target / "model_analyzer.yaml", header + yaml_text(model_analyzer_config(model, repository, data_path))):
            changed.append(target / "model_analyzer.yaml")
        _write_if_changed(target / STAMP, stamp)
    return changed


def commands_for_copy(profiling: Path, model: str, copy: str) -> Path:
    """`copy`'s perf_analyzer.txt: `model`'s commands aimed at a copy of it served under another name (make bench's
    side-by-side rows)."""
    commands = (profiling / model / "perf_analyzer.txt").read_text()
    (profiling / copy).mkdir(parents=True, exist_ok=True)
    target = profiling / copy / "perf_analyzer.txt"
    target.write_text(re.sub(rf"-m {re.escape(model)} ", f"-m {copy} ", commands))
    return target


def _prune(folder: Path, names: set[str], repository: Path) -> None:
    """Remove the files of models this repository no longer has (made for it: their stamp names it)."""
    import shutil

    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        stamp = entry / STAMP
        if entry.is_dir() and entry.name not in names and stamp.is_file() \
                and stamp.read_text().splitlines()[1:2] == [str(repository)]:
            shutil.rmtree(entry, ignore_errors=True)
