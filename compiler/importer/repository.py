"""An existing model repository read back into manifest entries, so that `make repo` builds it again.

Each TorchScript model (platform pytorch_libtorch, or backend pytorch beside a model.pt) becomes a model entry whose
source is its own file: every field the manifest has a key for is written with that key, explicitly (dynamic batching,
its queue policy, instance groups, parameters, versions, labels, warmup), so that the build derives nothing the
original config did not say; every other ModelConfig field goes under `config:`, and is named in the result. What no
key and no `config:` field can express (an input's allow_ragged_batch, an instance group's rate_limiter, a file the
build cannot export from) is named as left out, with its reason, never dropped in silence.

    result = import_repository(Path("Triton/models"), Path("."))
    result.entries      # [{"name": ..., "source": {"torchscript": ...}, ...}]
    result.said         # what went to config:, what was left out, and why
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from tritonclient.grpc import model_config_pb2 as pb

from compiler.errors import Problem, UserError
from compiler.manifest.raw_config import OWNED
from compiler.repository import layout
from compiler.triton_config import parse_text

#: Size drawn for each -1 dim where the repository says nothing of the sizes it serves.
EXAMPLE_SIZE = 8


@dataclass
class ImportResult:
    entries: list[dict[str, Any]] = field(default_factory=list)
    pipelines: list[dict[str, Any]] = field(default_factory=list)
    said: list[str] = field(default_factory=list)
    release: str | None = None


def _relative(path: Path, base: Path) -> str:
    return os.path.relpath(path.resolve(), base.resolve())


def _tensor(item: Any, is_input: bool, said: list[str], where: str, warmed: dict[str, list[int]] | None = None
            ) -> dict[str, Any]:
    """`warmed`: input -> the dims its first warmup sample has: the example size the build drew it at."""
    entry: dict[str, Any] = {"name": item.name, "dtype": pb.DataType.Name(item.data_type)}
    dims = list(item.dims)
    scalar = item.HasField("reshape") and not item.reshape.shape and dims == [1]
    entry["dims"] = [] if scalar else dims  # a scalar per example: the manifest's dims []
    if item.HasField("reshape") and not scalar:
        entry["reshape"] = list(item.reshape.shape)
    if is_input:
        if item.format:
            entry["format"] = pb.ModelInput.Format.Name(item.format)
        if -1 in dims:
            sample = (warmed or {}).get(item.name)
            shape = sample if sample and len(sample) == len(dims) else [EXAMPLE_SIZE if s == -1 else s for s in dims]
            entry["example"] = {"shape": shape}
        for flag in ("allow_ragged_batch", "optional", "is_shape_tensor", "is_non_linear_format_io"):
            if getattr(item, flag, False):
                said.append(f"{where}: input '{item.name}' {flag} left out: the manifest sets it for a pipeline's "
                            f"encoder only, and NVIDIA's pytorch_backend does not serve it on a model of its own")
    return entry


def _queue(policy: Any) -> dict[str, Any]:
    return {"timeout_action": pb.ModelQueuePolicy.TimeoutAction.Name(policy.timeout_action),
            "default_timeout_microseconds": policy.default_timeout_microseconds,
            "allow_timeout_override": policy.allow_timeout_override, "max_queue_size": policy.max_queue_size}


def _batching(config: Any) -> dict[str, Any] | bool:
    if not config.HasField("dynamic_batching"):
        return False
    source = config.dynamic_batching
    settings: dict[str, Any] = {"max_queue_delay_microseconds": source.max_queue_delay_microseconds}
    if source.preferred_batch_size:
        settings["preferred_batch_size"] = list(source.preferred_batch_size)
    if source.preserve_ordering:
        settings["preserve_ordering"] = True
    if source.HasField("default_queue_policy"):
        settings["default_queue_policy"] = _queue(source.default_queue_policy)
    else:
        settings["latency_budget_ms"] = 0  # no queue bound: the build derives none either
    if source.priority_levels:
        settings["priority_levels"] = source.priority_levels
        settings["default_priority_level"] = source.default_priority_level
    if source.priority_queue_policy:
        settings["priority_queue_policy"] = {int(k): _queue(v) for k, v in sorted(source.priority_queue_policy.items())}
    return settings


def _versions(config: Any, folder: Path, filename: str) -> tuple[dict[str, Any], int]:
    """The entry's version keys, and the version whose file is the source."""
    present = [int(d.name) for d in layout.version_dirs(folder) if (d / filename).exists()]
    policy = config.version_policy
    kind = policy.WhichOneof("policy_choice")
    if kind == "specific" and policy.specific.versions:
        served = sorted(v for v in policy.specific.versions if v in present) or present
        keys: dict[str, Any] = {"version": served[-1]}
        if len(served) > 1:
            keys["keep_versions"] = len(served) - 1
        return keys, served[-1]
    newest = present[-1] if present else 1
    keys = {"version": newest}
    count = policy.latest.num_versions if kind == "latest" else (len(present) if kind == "all" else 1)
    keys["version_policy"] = "all" if kind == "all" else "latest"
    if count > 1:
        keys["keep_versions"] = count - 1
    return keys, newest


def _model_entry(folder: Path, config: Any, base: Path, said: list[str], aoti: bool) -> dict[str, Any] | None:
    """A TorchScript model (`torchscript:`, `export: script`) or an AOTInductor package (`pt2:`, `export: aoti`)."""
    where = f"{folder.name}/config.pbtxt"
    default = layout.AOTI_FILENAME if aoti else layout.TORCHSCRIPT_FILENAME
    filename = config.default_model_filename or default
    version_keys, version = _versions(config, folder, filename)
    model_file = folder / str(version) / filename
    if not model_file.is_file():
        said.append(f"{where}: left out: no {filename} in any version folder it serves")
        return None
    # scripted: the file is TorchScript already, its control flow kept as it is; a package is served as it is
    source = {"pt2": _relative(model_file, base)} if aoti else {"torchscript": _relative(model_file, base)}
    entry: dict[str, Any] = {"name": config.name or folder.name, "source": source,
                             "export": "aoti" if aoti else "script", **version_keys,
                             "max_batch_size": config.max_batch_size}
    warmed = {name: list(value.dims) for sample in config.model_warmup[:1] for name, value in sample.inputs.items()}
    entry["inputs"] = [_tensor(item, True, said, where, warmed) for item in config.input]
    entry["outputs"] = [_tensor(item, False, said, where) for item in config.output]
    for item, out in zip(config.output, entry["outputs"]):
        if item.label_filename:
            out["labels"] = _relative(folder / item.label_filename, base)
    if config.HasField("sequence_batching"):
        entry["sequence_batching"], controls = _sequence(config.sequence_batching, where, said)
        entry["inputs"] += controls
    entry.update(_tunables(config, where, said))
    variants = {}
    for path in layout.variant_files(folder):  # configs/<name>.pbtxt: what each changes of the model's own
        tuned = _tunables(parse_text(path.read_text()), f"{folder.name}/configs/{path.name}", said)
        changed = {key: value for key, value in tuned.items() if entry.get(key) != value}
        if entry.get("parameters") and "parameters" in changed:  # a variant's parameters merge over the model's
            changed["parameters"] = {k: v for k, v in tuned["parameters"].items() if entry["parameters"].get(k) != v}
        variants[path.stem] = changed
    if variants:
        entry["variants"] = variants
    if config.response_cache.enable:
        entry["response_cache"] = True
    if config.model_warmup:
        entry["warmup"] = True  # kept only where the build writes the same samples (import_repository checks)
    raw = {}
    as_dict = json_format.MessageToDict(config, preserving_proto_field_name=True)
    for descriptor, _ in config.ListFields():
        if descriptor.name in ("batch_input", "batch_output", "runtime"):
            said.append(f"{where}: {descriptor.name} left out: the build sets it only where it generates the model "
                        "(a pipeline's encoder)")
        if descriptor.name in OWNED:  # set by a manifest key (the entry's own, above)
            continue
        raw[descriptor.name] = as_dict[descriptor.name]
    if raw:
        entry["config"] = raw
        said.append(f"{where}: under config: {', '.join(sorted(raw))} (no manifest key of their own)")
    if config.default_model_filename and config.default_model_filename != default:
        said.append(f"{where}: default_model_filename {config.default_model_filename} not kept: the build names "
                    f"its file {default}")
    return entry


def _sequence(batcher: Any, where: str, said: list[str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The typed sequence_batching key, and its control inputs as the forward() arguments they are."""
    from compiler.manifest.schema import SEQUENCE_CONTROLS

    keys = {kind: key for key, (kind, _) in SEQUENCE_CONTROLS.items()}
    settings: dict[str, Any] = {"max_sequence_idle_microseconds": batcher.max_sequence_idle_microseconds or 1_000_000}
    controls: dict[str, str] = {}
    inputs = []
    for item in batcher.control_input:
        for control in item.control:
            kind = pb.ModelSequenceBatching.Control.Kind.Name(control.kind)
            if kind not in keys:
                said.append(f"{where}: sequence control {kind} ('{item.name}') left out: the manifest expresses "
                            "start, end, ready and corrid")
                continue
            controls[keys[kind]] = item.name
            dtype = ("TYPE_FP32" if control.fp32_false_true else "TYPE_BOOL" if control.bool_false_true
                     else pb.DataType.Name(control.data_type) if control.data_type else "TYPE_INT32")
            inputs.append({"name": item.name, "dtype": dtype, "dims": [1]})
    settings["controls"] = controls
    if batcher.HasField("oldest"):
        settings["strategy"] = "oldest"
        settings["max_candidate_sequences"] = batcher.oldest.max_candidate_sequences
        if batcher.oldest.max_queue_delay_microseconds:
            settings["max_queue_delay_microseconds"] = batcher.oldest.max_queue_delay_microseconds
        if batcher.oldest.preferred_batch_size:
            settings["preferred_batch_size"] = list(batcher.oldest.preferred_batch_size)
    if batcher.state:
        said.append(f"{where}: sequence_batching.state left out: implicit state is not expressed by the manifest")
    return settings, inputs


def _tunables(config: Any, where: str, said: list[str]) -> dict[str, Any]:
    """The keys a variant may change too: max_batch_size, instance_group, dynamic_batching, parameters."""
    tuned: dict[str, Any] = {"max_batch_size": config.max_batch_size}
    groups = []
    for group in config.instance_group:
        groups.append({"kind": pb.ModelInstanceGroup.Kind.Name(group.kind), "count": group.count or 1,
                       **({"gpus": list(group.gpus)} if group.gpus else {})})
        lost = [name for name in ("rate_limiter", "profile", "passive", "host_policy", "secondary_devices")
                if _has(group, name)]
        if lost:
            said.append(f"{where}: instance_group {', '.join(lost)} left out: the manifest's instance_group has "
                        "kind, count and gpus (a rate limiter needs the server's --rate-limit too)")
    if groups:
        tuned["instance_group"] = groups
    if not config.HasField("sequence_batching"):
        tuned["dynamic_batching"] = _batching(config)
    if config.parameters:
        tuned["parameters"] = {key: value.string_value for key, value in sorted(config.parameters.items())}
    return tuned


def _has(message: Any, name: str) -> bool:
    value = getattr(message, name)
    return bool(value) if not hasattr(value, "ListFields") else bool(value.ListFields())


def _warmup_agrees(entry: dict[str, Any], config: Any, said: list[str]) -> None:
    """`warmup: true` where the build would write the config's own samples; else the warmup is named as left out."""
    from compiler.manifest.schema import ModelSpec
    from compiler.triton_config.builder import model_warmups

    if not entry.get("warmup"):
        return
    spec = ModelSpec.model_validate(entry)
    if [w.SerializeToString(deterministic=True) for w in model_warmups(spec)] != \
            [w.SerializeToString(deterministic=True) for w in config.model_warmup]:
        entry.pop("warmup")
        said.append(f"{entry['name']}/config.pbtxt: model_warmup left out: its samples are not the ones `warmup: "
                    "true` writes (zeros at batch 1 and max_batch_size)")


def _step_folders(record: dict[str, Any], kind: str) -> list[str]:
    return [str(step["model"]) for step in record.get("steps") or [] if step.get("kind") == kind]


#: The files a python step's folder holds besides the user's modules: the step runtime the build copies in.
RUNTIME_FILES = {"model.py", "steps.py"}


def _copy_user_modules(version: Path, base: Path, where: str, said: list[str]) -> bool:
    """A python step's modules (the build copied them into its folder) copied beside the new manifest, where its
    `python: module:callable` finds them; False, said, where a different file of that name is there already."""
    import shutil

    modules = sorted(p for p in version.glob("*.py") if p.name not in RUNTIME_FILES)
    clashes = [p.name for p in modules if (base / p.name).exists() and (base / p.name).read_bytes() != p.read_bytes()]
    if clashes:
        said.append(f"{where}: left out: its python: step's modules {', '.join(clashes)} differ from the files of "
                    f"that name beside the manifest ({base})")
        return False
    for path in modules:
        shutil.copyfile(path, base / path.name)
    if modules:
        said.append(f"{where}: copied {', '.join(p.name for p in modules)} beside the manifest (its python: step "
                    "imports them)")
    return True


def _pipeline_entry(folder: Path, config: Any, record: dict[str, Any], models: dict[str, dict[str, Any]], base: Path,
                    said: list[str]) -> dict[str, Any] | None:
    """A pipeline this compiler built, from the entry its record keeps, its paths pointed at the files the build
    copied into the repository (labels, the tokenizer); None, said, where it cannot be built from the repository."""
    import copy

    where = f"{folder.name}"
    entry = copy.deepcopy(record.get("entry") or {})
    if not entry:
        said.append(f"{where}: left out: an ensemble without the entry of the pipeline it was built from (built by an "
                    "older compiler, or by hand); write it as a pipeline of its steps (docs/pipelines.md)")
        return None
    repo = folder.parent
    for step_folder in _step_folders(record, "python"):  # python: steps import modules beside the manifest
        if not _copy_user_modules(repo / step_folder / "1", base, where, said):
            return None
    used = {step.get("model") or (step.get("tokenize") or {}).get("model") or (step.get("image") or {}).get("model")
            for step in entry["steps"]} - {None}
    missing = sorted(str(name) for name in used if name not in models)
    if missing:
        said.append(f"{where}: left out: it runs {', '.join(missing)}, which could not be imported")
        return None
    classify = iter(_step_folders(record, "classify"))
    tokenize = iter(_step_folders(record, "tokenize"))
    for step in entry["steps"]:
        if "classify" in step and step["classify"].get("labels"):
            step["classify"]["labels"] = _relative(repo / next(classify) / "1" / "labels.txt", base)
        elif "classify" in step:
            next(classify, None)
        if "tokenize" in step:
            source = models[step["tokenize"]["model"]]["source"]
            source.setdefault("tokenizer", _relative(repo / next(tokenize) / "1" / "tokenizer", base))
    for tensor, item in zip(entry.get("outputs") or [], config.output):
        if tensor.get("labels") and item.label_filename:
            tensor["labels"] = _relative(folder / item.label_filename, base)
    example = entry.get("example") or {}
    if example.get("images"):
        said.append(f"{where}: example.images left out (files beside the manifest it was built from); the proof "
                    "draws its own images")
        example.pop("images")
    if "example" in entry and not any(example.values()):
        entry.pop("example")
    from compiler.manifest.pipelines import PipelineSpec

    # in the order the manifest reference lists the keys, defaults left out, as one writes a pipeline
    return dict(PipelineSpec.model_validate(entry).model_dump(mode="json", exclude_defaults=True))


def import_repository(repository: Path, base: Path) -> ImportResult:
    """Manifest entries for the models of `repository`, their paths relative to `base` (the manifest's folder)."""
    from compiler.repository.record import read_record

    if not repository.is_dir():
        raise UserError(Problem(f"{repository} is not a folder", hint="give the model repository's path"))
    result = ImportResult()
    records = {folder.name: read_record(folder) or {} for folder in layout.model_folders(repository)}
    generated = {name: pipeline for pipeline, record in records.items() if record.get("kind") == "pipeline"
                 for name in record.get("folders") or [] if name != pipeline}
    ensembles: list[tuple[Path, Any]] = []
    for folder in layout.model_folders(repository):
        if folder.name in generated:  # a pipeline's step: the pipeline generates it again
            continue
        path = layout.config_file(folder)
        if not path.is_file():
            result.said.append(f"{folder.name}: left out: no config.pbtxt (write one, or let tritonserver "
                               "autocomplete it and save what it serves)")
            continue
        try:
            config = parse_text(path.read_text())
        except Exception as err:
            result.said.append(f"{folder.name}/config.pbtxt: left out: it does not parse: {str(err).splitlines()[0]}")
            continue
        platform = config.platform or _platform_of_files(folder, config)
        if platform in (layout.PYTORCH_PLATFORM, layout.AOTI_PLATFORM):
            entry = _model_entry(folder, config, base, result.said, aoti=platform == layout.AOTI_PLATFORM)
            if entry is not None:
                _warmup_agrees(entry, config, result.said)
                result.entries.append(entry)
        elif platform == layout.ENSEMBLE_PLATFORM:
            ensembles.append((folder, config))
        else:
            result.said.append(f"{folder.name}: left out: platform/backend '{platform}' is not PyTorch")
        result.release = result.release or records[folder.name].get("triton_version")
    models = {entry["name"]: entry for entry in result.entries}
    for folder, config in ensembles:
        pipeline = _pipeline_entry(folder, config, records[folder.name], models, base, result.said)
        if pipeline is not None:
            result.pipelines.append(pipeline)
    return result


def _platform_of_files(folder: Path, config: Any) -> str:
    """A config that names the backend only (or nothing): the platform its version folders' files make it, as core's
    AutoCompleteBackendFields does (repository/layout.py); a .pt2 makes it torch_aoti."""
    if config.backend == layout.PYTORCH_BACKEND or not config.backend:
        files = {p.name for d in layout.version_dirs(folder) for p in d.iterdir()}
        if layout.AOTI_FILENAME in files and layout.TORCHSCRIPT_FILENAME not in files:
            return layout.AOTI_PLATFORM
        if not config.backend:
            found = layout.autocompleted(folder)
            return (found[1] or found[0]) if found else ""
        return layout.PYTORCH_PLATFORM
    return str(config.backend)




def manifest_text(result: ImportResult, repository: Path) -> str:
    import io

    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")  # keys in the order the entry was written, as the manifest reference lists them
    yaml.default_flow_style = None  # lists of sizes and small maps inline, as a hand-written manifest has them
    yaml.width = 120
    buffer = io.StringIO()
    lines = [f"# Imported from {repository} by `compiler import`: `make repo` builds it again.",
             *(f"# {line}" for line in result.said)]
    document: dict[str, Any] = {}
    if result.release:
        document["triton_version"] = result.release
    document["models"] = result.entries
    if result.pipelines:
        document["pipelines"] = result.pipelines
    yaml.dump(document, buffer)
    return "\n".join(lines) + "\n" + buffer.getvalue()
