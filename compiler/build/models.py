"""The build of the models (then the pipelines): manifest -> sources -> export -> triton config -> repository.

    report = build(Path("models.yaml"), Path("Triton/models"))
    for entry in report.models: print(entry.name, entry.status)

All or nothing: every model is exported into a staging copy of the
repository, and only when all succeed does it replace the output (atomically).
On any failure the output is untouched and every failing model is reported.
Models whose fingerprint is unchanged are copied, not exported again; when
nothing changed nothing is written and torch is never imported.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from compiler.backend.nvidia.sources import served_by
from compiler.build.options import BuildOptions
from compiler.build.report import BuildReport, ModelReport
from compiler.build.staging import internal_problem, link_or_copy
from compiler.errors import ExportError, Problem, UserError
from compiler.manifest import LoadedManifest, ModelSpec, load_manifest
from compiler.profiling import write_profiling
from compiler.repository import layout
from compiler.repository.fingerprint import compiler_code_hash, fingerprint
from compiler.repository.record import read_record, write_record
from compiler.repository.swap import RepositoryLock, discard, new_staging, replace

Progress = Callable[[str], None]


def target_warnings(loaded: LoadedManifest, options: BuildOptions) -> list[str]:
    """Facts about the target release that hold for every model of the build, said once per build: the torch
    that exports against the torch the release ships, and TorchScript where the release serves torch.export."""
    from compiler.compat import assess, libtorch_of
    from compiler.compat.pytorch_versions import running_torch
    from compiler.compat.torchscript import SavedBy
    from compiler.releases import AOTI_SINCE

    release = loaded.manifest.release
    version = running_torch()
    if version is None:
        return []
    exports = {m.export for m in loaded.manifest.models}
    said: list[str] = []
    if exports & {"trace", "script"}:
        if not options.cross_proof:  # else each file is proved in the target's torch, or the build says why not
            fit = assess(release, SavedBy(version, True, "this build"), None)
            said += [note.line() for note in fit.warnings]
        if release.at_least(AOTI_SINCE):
            said.append(f"TorchScript is deprecated (torch {version} warns on every torch.jit call: \"Please switch "
                        f"to `torch.compile` or `torch.export`\"); Triton {release} serves torch.export packages: "
                        "`export: aoti` (platform torch_aoti)")
    if libtorch_of(release) is None and not loaded.manifest.target_torch:
        said.append(f"not proved for {release}: its PyTorch version is not known (give `target_torch:`, the image's "
                    f"torch from NGC's release notes); proved in torch {version}, which compiled the exports")
    return said


def _is_complete(model_dir: Path, model: ModelSpec) -> bool:
    return layout.config_file(model_dir).is_file() and \
        (model_dir / str(model.version) / layout.filename_of_export(model.export)).is_file()


def build(manifest_path: Path, output: Path, progress: Progress = lambda _: None,
          options: BuildOptions = BuildOptions()) -> BuildReport:
    """Export every model of the manifest and write the repository at `output`, all or nothing."""
    from compiler.build.pipelines import pipeline_fingerprint

    loaded = load_manifest(manifest_path)
    code_hash = compiler_code_hash()
    release = loaded.manifest.triton_version
    allow_paths = options.allow_paths
    prints = {m.name: fingerprint(m, release, loaded.directory, code_hash, allow_paths, loaded.manifest.target_torch)
              for m in loaded.manifest.models}
    for index, pipeline in enumerate(loaded.manifest.pipelines or []):
        prints[pipeline.name] = pipeline_fingerprint(loaded, index, prints, code_hash, allow_paths)
    return build_loaded(loaded, Path(output), prints, progress, options)


def build_loaded(loaded: LoadedManifest, output: Path, prints: dict[str, str], progress: Progress = lambda _: None,
                 options: BuildOptions = BuildOptions()) -> BuildReport:
    """The build of a loaded manifest with its fingerprints (computed by the process that was asked to build: a
    toolchain's build takes them from it, so that a no-op build stays one)."""
    from compiler.build.pipelines import pipeline_folders
    from compiler.build.pipelines import unchanged as pipeline_unchanged
    from compiler.build.toolchain import needs_toolchain
    from compiler.manifest.wiring import plan_all

    plans = plan_all(loaded)  # the pipelines' wiring (load_manifest has refused what the manifest gets wrong)
    force = options.force
    with RepositoryLock(output, waiting=progress):
        unchanged = set()
        for model in loaded.manifest.models:
            folder = output / model.name
            record = read_record(folder)
            if not force and record and record.get("fingerprint") == prints[model.name] and _is_complete(folder, model):
                unchanged.add(model.name)
        wanted = {m.name for m in loaded.manifest.models}
        for plan in plans:
            if not force and pipeline_unchanged(output, plan.name, prints[plan.name]):
                unchanged.add(plan.name)
                wanted |= set(pipeline_folders(read_record(output / plan.name)))
            wanted.add(plan.name)
        present = {p.name for p in output.iterdir()} if output.is_dir() else set()
        if unchanged == {m.name for m in loaded.manifest.models} | {p.name for p in plans} and present == wanted:
            _name_the_manifest(loaded, output, wanted)
            write_profiling(loaded, output, prints)
            names = sorted({m.name for m in loaded.manifest.models} | {p.name for p in plans})
            return BuildReport(output, [_unchanged(output / name) for name in names], wrote=False,
                               warnings=target_warnings(loaded, options))
        toolchain = needs_toolchain(loaded)
        if toolchain is None:
            staging = new_staging(output)
            try:
                reports = _build_into(loaded, staging, output, unchanged, prints, progress, options)
                replace(output, staging)
            except BaseException:
                discard(staging)
                raise
            shutil.rmtree(kept_folder(output), ignore_errors=True)  # all of it is in the repository now
            write_profiling(loaded, output, prints)
            return BuildReport(output, reports, wrote=True, warnings=target_warnings(loaded, options))
    # Outside the lock: the toolchain's build takes it.
    from compiler.build.toolchain import build_in_toolchain

    return build_in_toolchain(loaded, output, prints, progress, options, toolchain)


def _name_the_manifest(loaded: LoadedManifest, output: Path, names: set[str]) -> None:
    """An unchanged build from another manifest (the same entries) still records which manifest built the models."""
    manifest = str(loaded.path.resolve())
    for name in sorted(names):
        record = read_record(output / name) or {}
        if record and record.get("manifest") != manifest:
            write_record(output / name, {**record, "manifest": manifest})


def kept_folder(output: Path) -> Path:
    """Where a failed build keeps the models it did export and prove (beside the repository, never in it)."""
    return layout.sidecar(output, "kept")


def _build_into(loaded: LoadedManifest, staging: Path, output: Path, unchanged: set[str],
                prints: dict[str, str], progress: Progress, options: BuildOptions) -> list[ModelReport]:
    reports: list[ModelReport] = []
    problems: list[Problem] = []
    causes: list[BaseException] = []
    built: list[str] = []
    kept = kept_folder(output)
    for model in loaded.manifest.models:
        if model.name in unchanged:
            shutil.copytree(output / model.name, staging / model.name, copy_function=link_or_copy)
            reports.append(_unchanged(output / model.name))
            progress(f"{model.name}: unchanged")
            continue
        earlier = kept / model.name
        if not options.force and (read_record(earlier) or {}).get("fingerprint") == prints[model.name] \
                and _is_complete(earlier, model):
            shutil.copytree(earlier, staging / model.name, copy_function=link_or_copy)
            reports.append(_unchanged(earlier, "kept"))
            progress(f"{model.name}: kept from the last (failed) build, same fingerprint")
            continue
        started = time.monotonic()
        index = loaded.manifest.models.index(model)
        try:
            report = _export_one(loaded, model, staging / model.name, prints[model.name], _prefixed(progress, model.name),
                                 options, previous=output / model.name)
        except UserError as err:
            problems.extend(loaded.locate(p, index) for p in err.problems)
            causes.extend(err.underlying())
            progress(f"{model.name}: FAILED")
            continue
        except Exception as err:  # a bug of ours or of a library: this model's failure, not the build's
            problems.append(loaded.locate(internal_problem(model.name, err), index))
            causes.append(err)
            progress(f"{model.name}: FAILED (internal error)")
            continue
        report.seconds = time.monotonic() - started
        reports.append(report)
        built.append(model.name)
        progress(f"{model.name}: built in {report.seconds:.1f}s")
    if not problems:
        from compiler.build.pipelines import build_pipelines

        try:
            reports += build_pipelines(loaded, staging, output, prints, progress, options)
        except UserError as err:
            problems.extend(err.problems)
            causes.extend(err.underlying())
    if problems:
        _keep(staging, kept, built)
        raise UserError(_with_logs(problems, output), causes)
    return reports


def _keep(staging: Path, kept: Path, names: list[str]) -> None:
    """The repository stays all or nothing; what did export and prove is kept for the next build (by fingerprint),
    so that fixing one model does not export the others again."""
    for name in names:
        target = kept / name
        shutil.rmtree(target, ignore_errors=True)
        kept.mkdir(parents=True, exist_ok=True)
        shutil.copytree(staging / name, target, copy_function=link_or_copy)


def _with_logs(problems: list[Problem], output: Path) -> list[Problem]:
    """Problems whose full text was summarised (tensor reprs, tracebacks) name a log file that holds it."""
    logs = layout.sidecar(output, "logs")
    located = []
    for problem in problems:
        if problem.details:
            logs.mkdir(parents=True, exist_ok=True)
            log = logs / f"{problem.model or 'build'}.log"
            log.write_text(problem.render() + "\n\n" + problem.details)
            problem = dataclasses.replace(problem, hint=f"{problem.hint}; full text in {log}" if problem.hint
                                          else f"full text in {log}")
        located.append(problem)
    return located


def _unchanged(folder: Path, status: str = "unchanged") -> ModelReport:
    """An unchanged (or kept) model still carries what the build that made it said: its binding, outputs, guards
    and warnings."""
    from compiler.export.guards import Guards

    record = read_record(folder) or {}
    warnings = record.get("warnings") or []
    binding = (record.get("binding") or {}).get("inputs") or []
    guards = Guards.from_record(record.get("guards"))
    if record.get("kind") == "pipeline":
        from compiler.build.pipelines import tensor_lines

        return ModelReport(folder.name, status, **tensor_lines(record))
    return ModelReport(folder.name, status, binding=[(str(a), str(b)) for a, b in binding],
                       outputs=[f"{o['name']} {o['dtype']} {o['dims']}" for o in record.get("outputs") or []],
                       warnings=[str(w) for w in warnings] if isinstance(warnings, list) else [],
                       guards=guards.describe() if guards else [])


def _prefixed(progress: Progress, name: str) -> Progress:
    return lambda text: progress(f"{name}: {text}")


def _release_accepts(model: ModelSpec, text: str, release: Any, progress: Progress) -> None:
    """A config with `config:` fields, parsed by the target release's own ModelConfig schema (a field newer than the
    release is refused at the manifest's `config` line)."""
    from compiler.triton_config.release_schema import SchemaUnavailable, parse_for_release

    try:
        parsed = parse_for_release({model.name: text}, release)
    except SchemaUnavailable as err:
        progress(f"config: not checked against Triton {release}'s schema ({err})")
        return
    if model.name in parsed.errors:
        raise ExportError(Problem(f"config: Triton {release}'s ModelConfig (its tritonclient "
                                  f"{parsed.schema_release} schema) refuses the config: {parsed.errors[model.name]}",
                                  model=model.name, field="config",
                                  hint="drop the field, or target a release that has it"))
    progress(f"config: fields merged, accepted by Triton {parsed.schema_release}'s ModelConfig schema")


def kept_versions(model: ModelSpec, previous: Path) -> list[int]:
    """The earlier versions `keep_versions` keeps: the newest N folders below model.version in the repository the
    build replaces that hold a file of the same export (another export's file is not served by this config)."""
    if not model.keep_versions or not previous.is_dir():
        return []
    name = layout.filename_of_export(model.export)
    earlier = [int(d.name) for d in layout.version_dirs(previous) if int(d.name) < model.version and (d / name).exists()]
    return earlier[-model.keep_versions:]


def _export_one(loaded: LoadedManifest, model: ModelSpec, folder: Path, print_: str,
                progress: Progress, options: BuildOptions, previous: Path | None = None) -> ModelReport:
    # torch is imported only here, when a model really has to be exported.
    from compiler.export import export_model
    from compiler.sources import load_source
    from compiler.sources.loading import initialised_at_random
    from compiler.triton_config import build_config, to_text

    progress(f"loading source ({next(iter(model.source.model_dump(exclude_none=True)))})")
    module = load_source(model, loaded.directory, options.allow_paths)
    result = export_model(model, module, loaded.manifest.release, progress)
    kept = kept_versions(model, previous) if previous is not None else []
    config = build_config(model, result.outputs, result.batching[None], result.execution_ms, kept)
    if model.config or model.response_cache:
        _release_accepts(model, to_text(config), loaded.manifest.release, progress)

    for version in kept:  # earlier versions served beside the new one (version_policy names them)
        assert previous is not None
        shutil.copytree(previous / str(version), folder / str(version), copy_function=link_or_copy)
    if kept:
        progress(f"kept version{'s' if len(kept) > 1 else ''} {', '.join(map(str, kept))} beside {model.version} "
                 f"(keep_versions: {model.keep_versions})")
    elif model.keep_versions:
        progress(f"keep_versions: {model.keep_versions}, but the repository holds no earlier version of this export "
                 f"below {model.version}")
    model_file = layout.model_file(folder, model.version, config)
    model_file.parent.mkdir(parents=True)
    result.save(model_file)
    layout.config_file(folder).write_text(to_text(config))
    _copy_labels(loaded, model, result.outputs, folder, options.allow_paths)
    for variant in sorted(model.variants or {}):
        variant_config = build_config(model.for_variant(variant), result.outputs, result.batching[variant],
                                      result.execution_ms, kept)
        variant_path = layout.variant_file(folder, variant)
        variant_path.parent.mkdir(exist_ok=True)
        variant_path.write_text(to_text(variant_config))
    record = {
        "fingerprint": print_,
        "triton_version": loaded.manifest.triton_version,
        "manifest": str(loaded.path.resolve()),
        "binding": {"convention": result.binding.convention, "inputs": result.binding.table()},
        "outputs": [out.model_dump() for out in result.outputs],
        "tolerances": result.tolerances,
        "proved": result.plans,
        "trace_warnings": result.trace_warnings,
        "warnings": result.warnings + result.weak,
        "weak_outputs": result.weak,
        "output_keys": result.output_keys,
        "torch_version": _torch_version(),
        "optimized": result.optimized,
        "batch_invariance": {"examples": result.invariance.checked, "failure": result.invariance.failure},
        "dynamic_batching": {name or layout.CONFIG_FILE: form for name, form in result.batching.items()},
        "execution_ms": {str(batch): ms for batch, ms in result.execution_ms.items()},
        "inputs": [spec.model_dump(mode="json") for spec in model.inputs],
        "guards": result.guards.record(),
        "pytorch_backend": served_by(loaded.manifest.release),
        "kept_versions": kept,
    }
    proved_in, said = _cross_proof(loaded, model, result, model_file, progress, options.cross_proof)
    record["proved_in"] = proved_in
    write_record(folder, record)
    if result.invariance.checked:
        verdict = "holds" if result.invariance.holds else "fails"
        progress(f"batch invariance {verdict} on {result.invariance.checked} stacked examples")
    where = f"{loaded.path}:{loaded.line_of(('models', loaded.manifest.models.index(model)))}"
    random = initialised_at_random(module)
    seeded = [f"{where}: model '{model.name}': {', '.join(random)} not in the checkpoint: initialised at random "
              "(seeded, the same in every build), so its answers mean nothing until trained weights are given (a "
              "folder fine-tuned with this head)"] if random else []
    return ModelReport(model.name, "built", binding=result.binding.table(),
                       outputs=[f"{o.name} {o.dtype} {o.dims}" for o in result.outputs],
                       warnings=seeded + result.warnings + said + [f"{where}: weak proof: {w}" for w in result.weak],
                       guards=result.guards.describe())


def _cross_proof(loaded: LoadedManifest, model: ModelSpec, result: Any, model_file: Path,
                 progress: Progress, enabled: bool) -> tuple[list[str], list[str]]:
    """Where the release table knows the target image's torch and it is not this one, the file is proved again in
    it (compat/cross_proof.py). Returns the torch versions that proved it, and what to say."""
    import os

    from compiler.build.toolchain import INSIDE
    from compiler.compat import libtorch_of
    from compiler.compat.cross_proof import CrossProofFailed, CrossProofUnavailable, prove_in
    from compiler.compat.pytorch_versions import running_torch
    from compiler.errors import ExportError
    from compiler.export.proof import mismatch

    proved = [_torch_version()]
    release = loaded.manifest.release
    target = libtorch_of(release)
    if target is None or target == running_torch() or os.environ.get(INSIDE):
        return proved, []
    if not enabled:
        return proved, [f"not proved in torch {target} (Triton {release}'s): the cross-version proof is off "
                        "(--no-cross-proof)"]
    kind = "aoti" if model.export == "aoti" else "torchscript"
    try:
        proved.append(prove_in(target, kind, model_file, result.cases, lambda want, got: mismatch(model, want, got),
                               progress))
    except CrossProofUnavailable as err:
        return proved, [f"not proved in torch {target} (Triton {release}'s): {err}; `--no-cross-proof` says so "
                        "without trying"]
    except CrossProofFailed as err:
        causes = {"load": "a missing aoti_torch_* shim symbol, an operator the older libtorch lacks, or a file "
                          "format it cannot read",
                  "run": "an operator or argument the older torch handles otherwise",
                  "answers": "a kernel the older torch computes otherwise"}
        raise ExportError(Problem(
            f"the {'package' if kind == 'aoti' else 'TorchScript file'} does not hold in torch {target}, which "
            f"Triton {release}'s image ships: {err}", model=model.name, field="triton_version",
            hint=f"typical cause: {causes[err.what]}; compile with that torch (`target_torch: \"{target}\"` builds in "
                 f"a toolchain of it), or target a release whose image ships torch {running_torch()}",
            details=err.details)) from None
    progress(f"proved in torch {proved[-1]}, as Triton {release}'s image ships it")
    return proved, []


def _copy_labels(loaded: LoadedManifest, model: ModelSpec, outputs: Sequence[Any], folder: Path,
                 allow_paths: Sequence[Path]) -> None:
    """Each declared output's labels file, into the model folder as its label_filename; one line per class."""
    from compiler.errors import ExportError
    from compiler.sources.paths import PathNotFound, resolve_path

    problems = []
    for number, spec in enumerate(model.outputs or []):
        if not spec.labels:
            continue
        field_name = f"outputs[{number}].labels"
        try:
            path = resolve_path(spec.labels, loaded.directory, allow_paths)
            lines = path.read_text(encoding="utf-8").splitlines()
        except (PathNotFound, OSError, UnicodeDecodeError) as err:
            problems.append(Problem(f"cannot read the labels of '{spec.name}': {err}", model=model.name,
                                    field=field_name, hint="a UTF-8 text file beside the manifest, one label a line"))
            continue
        built = next(o for o in outputs if o.name == spec.name)
        classes = built.dims[-1] if built.dims else 1
        if len(built.dims) != 1 or classes != len(lines):
            problems.append(Problem(f"{spec.labels} has {len(lines)} lines, output '{spec.name}' has dims "
                                    f"{list(built.dims)}: one label per class is needed", model=model.name,
                                    field=field_name, hint=f"give {classes} lines, one per class, in class order"))
            continue
        (folder / layout.label_filename(spec.name)).write_text("\n".join(lines) + "\n", encoding="utf-8")
    if problems:
        raise ExportError(problems)


def _torch_version() -> str:
    import torch

    return str(torch.__version__)
