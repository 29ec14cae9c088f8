"""Build the pipelines of a manifest into the staging repository, after its models: plan them with the outputs the
build derived, write their steps and ensembles, and prove each against its eager chain. A pipeline whose
fingerprint (its entry, its models' fingerprints, the files its steps carry, the compiler) is unchanged is copied.

    reports = build_pipelines(loaded, staging, output, prints, progress, BuildOptions())
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from compiler.build.options import BuildOptions
from compiler.errors import Problem, UserError
from compiler.manifest import LoadedManifest
from compiler.manifest.step_settings import EncoderSettings, settings_of
from compiler.manifest.wiring import PipelinePlan, plan_all
from compiler.repository import layout
from compiler.repository.record import read_record, recorded_outputs, write_record

Progress = Callable[[str], None]


def pipeline_fingerprint(loaded: LoadedManifest, index: int, model_prints: dict[str, str], code_hash: str,
                         allow_paths: Sequence[Path] = ()) -> str:
    """Everything that can change what a pipeline's folders hold, without importing torch."""
    from compiler.pipeline.writer import user_modules
    from compiler.repository.fingerprint import file_sha256
    from compiler.sources.paths import PathNotFound, resolve_path

    spec = loaded.manifest.pipelines[index]  # type: ignore[index]
    files: dict[str, str] = {}
    for number, step in enumerate(spec.steps):
        if step.classify and step.classify.labels:
            try:
                files[f"labels{number}"] = file_sha256(resolve_path(step.classify.labels, loaded.directory, allow_paths))
            except (PathNotFound, OSError):
                files[f"labels{number}"] = "unresolved"
        if step.python:
            for path in user_modules(step.python.partition(":")[0], loaded.directory):
                files[path.name] = file_sha256(path)
    for item in (spec.example.images or []) if spec.example else []:
        path = loaded.directory / item
        files[f"example:{item}"] = file_sha256(path) if path.is_file() else "missing"
    used = sorted({s.model or getattr(s.tokenize, "model", None) or getattr(s.image, "model", None) or ""
                   for s in spec.steps} - {""})
    record = {"entry": spec.model_dump(mode="json"), "models": {name: model_prints.get(name) for name in used},
              "files": files, "compiler": code_hash, "release": loaded.manifest.triton_version}
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


def pipeline_folders(record: dict[str, Any] | None) -> list[str]:
    return list((record or {}).get("folders") or [])


def unchanged(output: Path, name: str, print_: str) -> bool:
    record = read_record(output / name)
    return bool(record and record.get("fingerprint") == print_ and all(
        layout.config_file(output / folder).is_file() for folder in pipeline_folders(record)))


def build_pipelines(loaded: LoadedManifest, staging: Path, output: Path, prints: dict[str, str],
                    progress: Progress, options: BuildOptions) -> list[Any]:
    """Every pipeline into `staging` (whose models are built); returns their ModelReports."""
    from compiler.build.report import ModelReport
    from compiler.build.staging import link_or_copy

    if not loaded.manifest.pipelines:
        return []
    outputs = recorded_outputs(staging, (m.name for m in loaded.manifest.models))
    plans = plan_all(loaded, outputs)
    reports = []
    problems: list[Problem] = []
    for plan in plans:
        print_ = prints[plan.name]
        say = _prefixed(progress, plan.name)
        if not options.force and unchanged(output, plan.name, print_):
            for folder in pipeline_folders(read_record(output / plan.name)):
                shutil.copytree(output / folder, staging / folder, copy_function=link_or_copy)
            reports.append(ModelReport(plan.name, "unchanged", **tensor_lines(read_record(output / plan.name) or {})))
            say("unchanged")
            continue
        started = time.monotonic()
        try:
            proved = _build_one(loaded, plan, staging, say, options.allow_paths)
        except UserError as err:
            problems.extend(loaded.locate(p, plan.index, "pipelines") for p in err.problems)
            say("FAILED")
            continue
        except Exception as err:  # a bug of ours or of a library: this pipeline's failure
            from compiler.build.staging import internal_problem

            problems.append(loaded.locate(internal_problem(plan.name, err), plan.index, "pipelines"))
            say("FAILED (internal error)")
            continue
        folders = [s.model for s in plan.steps if s.generated] + [plan.name]
        record = {
            "fingerprint": print_, "kind": "pipeline", "folders": folders, "models": plan.models,
            "manifest": str(loaded.path.resolve()), "triton_version": loaded.manifest.triton_version,
            "inputs": [[t.name, t.dtype, t.dims] for t in plan.inputs],
            "outputs": [[t.name, t.dtype, t.dims] for t in plan.outputs],
            "steps": [{"kind": s.kind, "model": s.model, "inputs": s.input_map, "outputs": s.output_map}
                      for s in plan.steps],
            # the manifest's entry, as written (paths relative to its manifest): what `compiler import` reads back
            "entry": loaded.manifest.pipelines[plan.index].model_dump(mode="json", exclude_none=True),
            "proved": proved}
        write_record(staging / plan.name, record)
        seconds = time.monotonic() - started
        reports.append(ModelReport(plan.name, "built", seconds=seconds, **tensor_lines(record)))
        say(f"built in {seconds:.1f}s")
    if problems:
        raise UserError(problems)
    return reports


def tensor_lines(record: dict[str, Any]) -> dict[str, Any]:
    """What the build's table shows of a pipeline, from its build.json (built, kept or unchanged alike): its
    inputs, outputs and steps."""
    return {"inputs": [f"{n} {t} {d}" for n, t, d in record.get("inputs") or []],
            "outputs": [f"{n} {t} {d}" for n, t, d in record.get("outputs") or []],
            "steps": " -> ".join(s["model"] if s["kind"] == "model" else f"{s['kind']}({s['model']})"
                                 for s in record.get("steps") or [])}


def _prefixed(progress: Progress, name: str) -> Progress:
    return lambda text: progress(f"{name}: {text}")


def _build_one(loaded: LoadedManifest, plan: PipelinePlan, staging: Path, progress: Progress,
               allow_paths: Sequence[Path]) -> dict[str, Any]:
    from compiler.pipeline.proof import Chain, compiled_runners, eager_runners, last_model, prove, raw_inputs, step_folders
    from compiler.pipeline.writer import write_pipeline

    records = {name: read_record(staging / name) or {} for name in plan.models}
    progress("steps: " + " -> ".join(s.kind for s in plan.steps))
    write_pipeline(plan, loaded, staging, records, allow_paths)
    models = {m.name: m for m in loaded.manifest.models}
    eager = eager_runners(plan, models, loaded.directory, allow_paths, lambda text: progress(text.split(": ", 1)[-1]))
    compiled = compiled_runners(plan, models, staging, eager)
    folders = step_folders(plan, staging)
    inputs = raw_inputs(plan, staging, loaded.directory)
    count = prove(plan, Chain(plan, folders, eager), Chain(plan, folders, compiled), inputs,
                  last_model(plan, models), progress)
    proved: dict[str, Any] = {"inputs": count, "batch": count,
                              "against": "the same steps around eager PyTorch, in-process"}
    encoders = [s for s in plan.steps if s.kind == "encoder"]
    if encoders:
        from compiler.compat.aoti_rules import ragged_batching
        from compiler.releases import Release

        said = ragged_batching(Release.parse(loaded.manifest.triton_version))
        for step in encoders:
            settings = settings_of(step, EncoderSettings)
            pool = " and the pool step" if settings["mode"] else ""
            progress(f"{step.model}: '{settings['model']}' fused with the tokenizer's padding{pool}, "
                     f"merging requests of any length (TorchScript, ragged batching: {said})")
        proved["merged"] = {"requests": min(count, plan.spec.max_batch_size) + 1, "batching": said,
                            "encoders": [s.model for s in encoders]}
    return proved
