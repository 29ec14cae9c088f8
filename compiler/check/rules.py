"""The checks of `check`: layout, config, and the model against its config.

Each rule returns findings and never raises for a problem in the repository:
a broken repository is what `check` is for.
"""

from __future__ import annotations

import functools
import math
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as pb

from compiler import datatypes
from compiler.backend.pytorch import binding_rules as rules
from compiler.check.core_rules import config_rules, ensemble_findings
from compiler.check.findings import ERROR, INFO, WARNING, Finding, line_of
from compiler.compat.aoti_rules import aoti_violations
from compiler.compat.server_crashes import STRING_CLASSIFICATION, crashes_of, string_outputs
from compiler.compat.torchscript_rules import torchscript_violations
from compiler.export.devices import baked_devices
from compiler.releases import CONFIG_FEATURES, MODEL_CONFIG_NAME_SINCE, Release
from compiler.repository import layout
from compiler.rulebook import FEATURE_CODES


# -- layout -------------------------------------------------------------------------------------
def check_layout(folder: Path, config: pb.ModelConfig | None) -> list[Finding]:
    name = folder.name
    findings: list[Finding] = []
    config_path = layout.config_file(folder)
    if not config_path.is_file():
        findings.append(Finding.of(ERROR, f"no {layout.CONFIG_FILE}", name, folder,
                                hint="every model folder needs one; `make repo` writes it from models.yaml", code="L001"))
    versions = [p for p in folder.iterdir() if p.is_dir()]
    numeric = [p for p in versions if p.name.isdigit()]
    for other in sorted(set(versions) - set(numeric)):
        if other.name == layout.WARMUP_DIR:
            continue  # model_warmup's input_data_file files: Triton reads them from <model>/warmup/
        if other.name == layout.VARIANTS_DIR:
            strays = sorted(p.name for p in other.iterdir() if p.suffix != ".pbtxt")
            if strays:
                findings.append(Finding.of(WARNING, f"configs/ holds {', '.join(strays)}: only <variant>.pbtxt files are "
                                        "read (tritonserver --model-config-name)", name, other, code="L002"))
            continue
        findings.append(Finding.of(WARNING, f"folder '{other.name}' is not a numeric version; Triton ignores it", name, other,
                                   code="L003"))
    if not numeric:
        findings.append(Finding.of(ERROR, "no numeric version folder (e.g. 1/)", name, folder, code="L004"))
    filename = layout.model_filename(config) if config is not None else None
    for version in sorted(numeric, key=lambda p: int(p.name)):
        if filename is not None and not (version / filename).exists():  # a file, or a folder (a SavedModel)
            present = ", ".join(sorted(p.name for p in version.iterdir())) or "nothing"
            findings.append(Finding.of(ERROR, f"version {version.name} has no {filename} (it holds {present})", name,
                                    version, hint="export the model into it (`make repo`); model files are build outputs",
                                       code="L005"))
    on_disk = {int(p.name) for p in numeric}
    wanted = set(config.version_policy.specific.versions) if config is not None else set()
    if numeric and wanted and not wanted & on_disk:
        findings.append(Finding.of(
            ERROR, f"version_policy names versions {sorted(wanted)}, the folder holds {sorted(on_disk)}: at least one "
            "version must be available under the version policy; Triton refuses the model", name, config_path,
            line_of(config_path.read_text(), "version_policy"), hint=f"list one of {sorted(on_disk)}, or add the folder",
            code="L006"))
    if config is not None and not config.platform and not config.backend and "." not in name:
        findings.append(Finding.of(
            ERROR, f"could not determine backend for model '{name}': the config names neither platform nor backend, "
            "and the folder has no '.<backend>' suffix; Triton refuses it when it polls the repository", name,
            config_path, hint="add backend: \"python\" (or the backend that serves it), or name the folder "
            f"{name}.<backend>", code="L007"))
    if config is not None and config.name and config.name != name:
        text = config_path.read_text()
        findings.append(Finding.of(ERROR, f"config name '{config.name}' differs from its folder '{name}'", name,
                                config_path, line_of(text, "name:"), hint=f"set name: \"{name}\" or rename the folder",
                                   code="L008"))
    return findings


def autocomplete(folder: Path, config: pb.ModelConfig, config_path: Path) -> list[Finding]:
    """A config that names neither platform nor backend is completed as Triton core completes it from the model's
    files (layout.AUTOCOMPLETED), in place, so that every later rule reads what the server will run; said once."""
    if config.platform or config.backend or config.default_model_filename:
        return []
    derived = layout.autocompleted(folder)
    if derived is None:
        return []
    backend, platform, filename = derived
    config.backend = backend
    if platform:
        config.platform = platform
    config.default_model_filename = filename
    return [Finding.of(INFO, f"the config names neither platform nor backend: Triton derives backend '{backend}' from "
                       f"its {filename} (core's AutoCompleteBackendFields)", folder.name, config_path,
                       hint=f'say it in the config: backend: "{backend}"', code="L009")]


def check_files(folder: Path, config: pb.ModelConfig) -> list[Finding]:
    """The files a config names beyond its model file: each output's label_filename, and a pipeline step's own
    (the runtime, its settings, the tokenizer, the labels, the user's module) in each version folder."""
    import json

    name = folder.name
    config_path = layout.config_file(folder)
    text = config_path.read_text() if config_path.is_file() else ""
    findings: list[Finding] = []
    for tensor in config.output:
        if tensor.label_filename and not (folder / tensor.label_filename).is_file():
            findings.append(Finding.of(ERROR, f"output '{tensor.name}' names label_filename "
                                       f"'{tensor.label_filename}', which the model folder lacks; Triton fails the load",
                                       name, config_path, line_of(text, tensor.label_filename),
                                       hint="copy the labels file beside config.pbtxt (`make repo` does)", code="L010"))
    for version in layout.version_dirs(folder):
        settings_file = version / "step.json"
        if config.backend != "python" or not settings_file.is_file():
            continue
        try:
            settings = json.loads(settings_file.read_text())
        except ValueError as err:
            findings.append(Finding.of(ERROR, f"step.json does not parse: {err}", name, settings_file,
                                       code="L011"))
            continue
        needed = ["model.py", "steps.py"]
        if settings.get("kind") == "tokenize":
            needed.append(f"{settings.get('tokenizer', 'tokenizer')}/tokenizer.json")
        if settings.get("label_file"):
            needed.append(str(settings["label_file"]))
        if settings.get("kind") == "python":
            needed.append(str(settings.get("callable", "")).partition(":")[0].split(".")[0] + ".py")
        for item in needed:
            if not (version / item).is_file():
                findings.append(Finding.of(ERROR, f"the pipeline step lacks {item} in {version.name}/: it cannot "
                                           "start", name, version / item,
                                           hint="rebuild the repository (`make repo`): step folders are build outputs",
                                           code="L011"))
    return findings


# -- config -------------------------------------------------------------------------------------
def parse_config(path: Path) -> tuple[pb.ModelConfig | None, list[Finding]]:
    config = pb.ModelConfig()
    try:
        text_format.Parse(path.read_text(), config)
    except text_format.ParseError as err:
        line, column = getattr(err, "GetLine", lambda: None)(), getattr(err, "GetColumn", lambda: None)()
        message = str(err)
        match = re.match(r"^(\d+):(\d+) : (.*)$", message, re.S)
        if match:
            line, column, message = int(match.group(1)), int(match.group(2)), match.group(3)
        hint = None
        field = re.search(r'has no field named "(\w+)"', message)
        if field:
            hint = f"'{field.group(1)}' is not a ModelConfig field; check the spelling against Triton's model_config.proto"
        return None, [Finding.of(ERROR, f"config does not parse: {message}", path.parent.name, path, line, column, hint,
                                 code="L012")]
    return config, []


def check_ensembles(configs: dict[str, tuple[Path, pb.ModelConfig]]) -> list[Finding]:
    """Across the repository: every step of an ensemble runs a model the repository holds, and what it needs of
    that model holds (core_rules.ensemble_findings)."""
    findings = ensemble_findings(configs)
    for name, (path, config) in sorted(configs.items()):
        if config.platform != layout.ENSEMBLE_PLATFORM:
            continue
        text = path.read_text()
        for number, step in enumerate(config.ensemble_scheduling.step):
            if step.model_name not in configs:
                findings.append(Finding.of(
                    ERROR, f"step {number} runs model '{step.model_name}', which the repository does not hold; "
                    "Triton refuses the ensemble", name, path, line_of(text, f'"{step.model_name}"'),
                    hint=f"add the model '{step.model_name}', or name one of {', '.join(sorted(configs))}", code="E103"))
    return findings


def _tensors(config: pb.ModelConfig) -> list[tuple[str, Any]]:
    return [("input", t) for t in config.input] + [("output", t) for t in config.output]


def check_config(path: Path, config: pb.ModelConfig, release: Release) -> list[Finding]:
    """One config on its own: what its release knows (features_rules), Triton core's validation
    (core_rules.config_rules), and the PyTorch backend's rules of that release (pytorch_rules)."""
    name = layout.model_of(path).name
    text = path.read_text()
    findings: list[Finding] = []

    def add(severity: str, message: str, needle: str | None = None, hint: str | None = None,
            code: str | None = None) -> None:
        findings.append(Finding.of(severity, message, name, path, line_of(text, needle) if needle else None, hint=hint,
                                   code=code))

    feature_rules(config, path, release, add)
    config_rules(config, add, release)
    pytorch_rules(config, release, add)
    crash_rules(config, release, add)
    return findings


def merges(config: pb.ModelConfig) -> bool:
    """Whether the config's dynamic batcher may put several requests in one execution (not with a preferred batch
    size of 1 and no queue delay: manifest/schema.py, DynamicBatching.merges)."""
    batching = config.dynamic_batching
    return config.HasField("dynamic_batching") and not (
        list(batching.preferred_batch_size) == [1] and batching.max_queue_delay_microseconds == 0)


def crash_rules(config: pb.ModelConfig, release: Release, add: Any) -> None:
    """Outputs a request can end the release's tritonserver with (compat/server_crashes.py)."""
    if STRING_CLASSIFICATION in crashes_of(release):
        for name in string_outputs(config):
            add(ERROR, f"output '{name}' is TYPE_STRING: {STRING_CLASSIFICATION.said(release)}", f'"{name}"',
                STRING_CLASSIFICATION.fix, code="R130")


def feature_rules(config: pb.ModelConfig, path: Path, release: Release, add: Any) -> None:
    """Fields and types the release's schema and backends know: BF16, non-linear IO, runtime, iterative sequences,
    model metrics, --model-config-name variants, the dtypes the PyTorch backend serves."""
    def needs(feature: str, where: str) -> None:
        since = CONFIG_FEATURES[feature]
        if not release.at_least(since):
            add(ERROR, f"'{feature}' is unknown to Triton {release} (it arrives in {since})", where,
                f"remove it, or target {since} or later", code=FEATURE_CODES[feature])

    for _, tensor in _tensors(config):
        type_name = pb.DataType.Name(tensor.data_type)
        if type_name == "TYPE_BF16":
            needs("TYPE_BF16", "TYPE_BF16")
        if tensor.is_non_linear_format_io:
            needs("is_non_linear_format_io", "is_non_linear_format_io")
    if layout.is_variant_file(path) and not release.at_least(MODEL_CONFIG_NAME_SINCE):
        add(WARNING, f"Triton {release} has no --model-config-name (it arrives in {MODEL_CONFIG_NAME_SINCE}): this "
            "variant is never loaded there", None, f"target {MODEL_CONFIG_NAME_SINCE} or later", code="R120")
    if config.runtime:
        needs("runtime", "runtime")
    if config.sequence_batching.iterative_sequence:
        needs("iterative_sequence", "iterative_sequence")
    if config.HasField("model_metrics"):
        needs("model_metrics", "model_metrics")


def pytorch_rules(config: pb.ModelConfig, release: Release, add: Any) -> None:
    """The PyTorch backend of the release: AOTI's rules (compat/aoti_rules.py) for torch_aoti, input names for
    TorchScript."""
    if layout.is_aoti(config):
        def api(tensor: Any) -> str:
            name = pb.DataType.Name(tensor.data_type)
            return datatypes.lookup(name).api_name if name != "TYPE_INVALID" else name

        for v in aoti_violations(release, config.max_batch_size, [(t.name, api(t)) for t in config.input],
                                 [(t.name, api(t)) for t in config.output], merges(config)):
            tensors = config.input if v.field == "inputs" else config.output
            needle = f'"{tensors[v.index].name}"' if v.index is not None else \
                {"max_batch_size": "max_batch_size", "dynamic_batching": "dynamic_batching"}.get(v.field, "platform")
            add(ERROR, v.message, needle, v.hint, code=v.code)
    elif layout.is_pytorch(config):  # TorchScript: compat/torchscript_rules.py, as the manifest's loader applies them
        def typed(tensors: Any) -> list[tuple[str, str]]:
            return [(t.name, pb.DataType.Name(t.data_type)) for t in tensors if t.data_type != pb.TYPE_INVALID]

        for v in torchscript_violations(release, typed(config.input), typed(config.output)):
            tensor = typed(config.input if v.field == "inputs" else config.output)[v.index or 0]
            add(ERROR, v.message, tensor[1] if v.part == "dtype" else f'"{tensor[0]}"', v.hint, code=v.code)


# -- the model against its config ----------------------------------------------------------------
_NARROW_INTEGERS = {"TYPE_INT32", "TYPE_INT16", "TYPE_INT8", "TYPE_UINT8"}


def _feeds(value: Any, kind: str, depth: int = 4) -> bool:
    """Does `value` reach a `kind` node within a few steps (through casts, views, selects)?"""
    frontier = [value]
    for _ in range(depth):
        following = []
        for item in frontier:
            for use in item.uses():
                if use.user.kind() == kind:
                    return True
                following.extend(use.user.outputs())
        frontier = following
    return False


def _line_in_block(text: str, name: str, key: str) -> int | None:
    """The line of `key` inside the block of the tensor called `name` (else the name's line)."""
    lines = text.splitlines()
    start = line_of(text, f'"{name}"')
    if start is None:
        return None
    for number in range(start, min(start + 8, len(lines) + 1)):
        if lines[number - 1].strip().startswith(key):
            return number
    return start


@dataclass
class ModelUnderCheck:
    """One model file loaded, and the config it is checked against (config.pbtxt or a variant's)."""

    folder: Path
    path: Path  # the config file
    text: str
    config: pb.ModelConfig
    release: Release
    model_file: Path
    module: Any  # the loaded TorchScript module
    is_variant: bool
    args: list[str] = field(default_factory=list)  # forward() argument names
    index: dict[str, int] | None = None  # config input -> forward() position; None when they cannot bind
    findings: list[Finding] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.folder.name

    def add(self, severity: str, message: str, needle: str | int | None = None, hint: str | None = None,
            code: str | None = None) -> None:
        line = needle if isinstance(needle, int) or needle is None else line_of(self.text, needle)
        self.findings.append(Finding.of(severity, message, self.name, self.path, line, hint=hint, code=code))


ModelRule = Callable[[ModelUnderCheck], None]


def check_model(folder: Path, config: pb.ModelConfig, release: Release, path: Path | None = None) -> list[Finding]:
    """The model file against `config` (config.pbtxt, or the variant config at `path`): each of MODEL_RULES."""
    if config.platform not in (layout.PYTORCH_PLATFORM, layout.AOTI_PLATFORM):
        return []
    files = [layout.model_file(folder, v.name, config) for v in layout.version_dirs(folder)]
    files = [f for f in files if f.is_file()]
    if not files:
        return []
    path = path or layout.config_file(folder)
    if layout.is_aoti(config):
        return check_package(folder, config, path, files[-1]) + guard_findings(folder, config, path)
    loaded = _load_torchscript(folder, files[-1])
    if isinstance(loaded, Finding):
        return [loaded]
    subject = ModelUnderCheck(folder, path, path.read_text(), config, release, files[-1], loaded,
                              is_variant=layout.is_variant_file(path))
    for rule in MODEL_RULES:
        rule(subject)
    return subject.findings + guard_findings(folder, config, path)


def guard_findings(folder: Path, config: pb.ModelConfig, path: Path) -> list[Finding]:
    """What the model refuses (the guards our build compiled in, from build.json): said as info; an AOTI package
    without that record is a warning, as one out-of-range index can abort the process that serves it."""
    from compiler.export.guards import Guards
    from compiler.repository.record import read_record

    if layout.is_variant_file(path):
        return []
    guards = Guards.from_record((read_record(folder) or {}).get("guards"))
    if guards is not None:
        lines = guards.describe()
        return [Finding.of(INFO, "guards: " + ("; ".join(lines) if lines else "none needed"), folder.name, path,
                           code="T211")]
    if not layout.is_aoti(config):
        return []
    return [Finding.of(WARNING, "no record of the package's guards (not built by this compiler, or before guards): "
                       "an out-of-range index can abort() inside a compiled kernel and take the server down",
                       folder.name, path, hint="rebuild it with `make repo`, and set AOTI_RUNTIME_CHECK_INPUTS=1 in "
                       "the server's environment", code="A204")]


def _load_torchscript(folder: Path, model_file: Path) -> Any:
    import importlib.util

    import torch

    from compiler.export.messages import describe

    if importlib.util.find_spec("torchvision") is not None:
        import torchvision  # noqa: F401 - registers torchvision:: operators, as NGC's PyTorch backend links them

    try:
        with warnings.catch_warnings():  # torch 2.14 deprecates jit.load for torch.export; Triton's libtorch needs it
            warnings.filterwarnings("ignore", category=FutureWarning, message=r".*torch\.jit.*")
            return torch.jit.load(str(model_file), map_location="cpu").eval()
    except Exception as err:
        return Finding.of(ERROR, f"{model_file.name} is not loadable TorchScript: {describe(err)}",
                          folder.name, model_file,
                          hint="export it with torch.jit.trace or torch.jit.script, then torch.jit.save", code="T201")


def rule_libtorch(subject: ModelUnderCheck) -> None:
    """Will the target's libtorch load the file? A fact about the file: said for config.pbtxt only."""
    if not subject.is_variant:
        subject.findings.extend(check_libtorch(subject.folder, subject.model_file, subject.module, subject.release))


def sequence_inputs(config: pb.ModelConfig) -> list[str]:
    """The forward() arguments a sequence batcher fills: its control inputs and its states' inputs (the backend counts
    each as an input: pt/model_instance_state.cc:113-145 in r26.05)."""
    batcher = config.sequence_batching
    return [item.name for item in batcher.control_input] + [state.input_name for state in batcher.state]


def _inputs_against(config: pb.ModelConfig, args: list[str]) -> str | None:
    """Why the backend refuses to load `config` against forward(`args`) for the count of its inputs, or None. A batch
    input is one more forward() argument, named by its target_name, after the inputs (the backend counts and maps
    them so: pt/model_instance_state.cc:104, :1475 in r26.05); so is each control input and state of a sequence
    batcher."""
    names = [t.name for t in config.input] + [name for batch in config.batch_input for name in batch.target_name] \
        + sequence_inputs(config)
    if len(args) == len(names):
        return None
    return f"the config has {len(names)} inputs, forward({', '.join(args)}) takes {len(args)}; Triton refuses to load it"


def static_binding(folder: Path, config: pb.ModelConfig, config_path: Path) -> list[Finding]:
    """Under --no-run: the count of a TorchScript model's forward() arguments, read from its archive's code/ without
    torch (backend/pytorch/archive.py), against the config's inputs."""
    from compiler.backend.pytorch.archive import forward_arguments

    if config.platform != layout.PYTORCH_PLATFORM or (config.backend and config.backend != layout.PYTORCH_BACKEND):
        return []
    filename = layout.model_filename(config)
    versions = sorted((p for p in folder.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name))
    found = []
    for version in versions:
        args = forward_arguments(version / str(filename)) if filename else None
        said = _inputs_against(config, args) if args is not None else None
        if said:
            found.append(Finding.of(ERROR, f"version {version.name}: {said}", folder.name, config_path,
                                    line_of(config_path.read_text(), "input"), hint="one input per forward() argument",
                                    code="T203"))
    return found


def rule_binding(subject: ModelUnderCheck) -> None:
    """Config inputs against forward() arguments, by the libtorch backend's own rules."""
    args = [a.name for a in subject.module.forward.schema.arguments[1:]]
    subject.args = args
    config_names = [t.name for t in subject.config.input] + [name for batch in subject.config.batch_input
                                                             for name in batch.target_name]
    said = _inputs_against(subject.config, args)
    if said:
        subject.add(ERROR, said, "input", "one input per forward() argument", code="T203")
        return
    convention, index = rules.bind_inputs(config_names, args)
    for name in sequence_inputs(subject.config):  # a control binds by its own <name>__<index> only
        position = rules.named_index(name)
        if position is None:
            subject.add(ERROR, f"sequence control input '{name}' does not follow <name>__<index>; pytorch_backend "
                        "refuses to load the model (ValidateBooleanSequenceControl)", f'"{name}"',
                        "name it after its forward() position, e.g. START__1", code="T204")
            return
        index[name] = position
        config_names = [*config_names, name]
    binding = ", ".join(f"{n} -> {args[index[n]]}" for n in config_names if index[n] < len(args))
    subject.add(INFO, f"input binding ({convention}): {binding}", code="T205")
    if convention == rules.STRICT_CONFIG_ORDERING:
        subject.add(WARNING, "input names are neither forward() arguments nor <name>__<index>: Triton binds them in "
                    "config order, silently", f'"{config_names[0]}"', f"name them after forward({', '.join(args)})", code="T206")
    elif sorted(index.values()) != list(range(len(args))):
        subject.add(ERROR, f"inputs {config_names} do not reach each of forward({', '.join(args)}) once",
                    f'"{config_names[0]}"', code="T207")
        return
    subject.index = index


def rule_token_ids(subject: ModelUnderCheck) -> None:
    """Narrow integer ids feeding an embedding: a client sending what tokenizers produce (INT64) is refused."""
    if subject.index is None:
        return
    graph_inputs = list(subject.module.inlined_graph.inputs())[1:]
    proved = _proved_dtypes(subject.folder)
    for tensor in subject.config.input:
        position = subject.index[tensor.name]
        want = pb.DataType.Name(tensor.data_type)
        if proved.get(tensor.name) == want:
            continue  # our build traced and proved the model with exactly these ids: one source of truth
        if want in _NARROW_INTEGERS and position < len(graph_inputs) and _feeds(graph_inputs[position], "aten::embedding"):
            subject.add(ERROR, f"input '{tensor.name}' is {want} but feeds an embedding lookup (token ids): PyTorch "
                        "tokenizers produce and models are traced with INT64 ids, so clients sending them are refused "
                        "by Triton", _line_in_block(subject.text, tensor.name, "data_type"), "set data_type: TYPE_INT64",
                        code="T208")


def _proved_dtypes(folder: Path) -> dict[str, str]:
    """Input name -> the dtype our build traced and proved the model with (build.json), for models we built."""
    from compiler.repository.record import read_record

    recorded = (read_record(folder) or {}).get("inputs") or []
    return {str(i["name"]): str(i["dtype"]) for i in recorded if isinstance(i, dict) and "name" in i and "dtype" in i}


def rule_devices(subject: ModelUnderCheck) -> None:
    """A device frozen into the program by tracing, against the instance groups."""
    devices = baked_devices(subject.module)
    if not devices:
        return
    config = subject.config
    baked = "cpu" if "cpu" in devices else "cuda"
    kinds = {pb.ModelInstanceGroup.Kind.Name(g.kind) for g in config.instance_group} or {"KIND_AUTO"}
    if baked == "cpu" and kinds & {"KIND_GPU", "KIND_AUTO"}:
        subject.add(WARNING, f"tracing baked torch.device(\"cpu\") into the code; instance groups {sorted(kinds)} may "
                    "run it on a GPU, where tensors it creates land on the CPU",
                    "instance_group" if config.instance_group else None,
                    "trace on the target device, or export with torch.jit.script", code="T209")
    elif baked == "cuda" and "KIND_CPU" in kinds:
        subject.add(ERROR, "tracing baked a CUDA device into the code, but the instance group is KIND_CPU",
                    "instance_group", "trace on CPU, or serve it KIND_GPU", code="T209")


def rule_runs(subject: ModelUnderCheck) -> None:
    """Run the model on inputs shaped and typed as the config says; compare what comes back."""
    if subject.index is not None:
        _run(subject.module, subject.config, subject.text, subject.index, subject.config.max_batch_size > 0,
             functools.partial(subject.add, code="T210"), examples=example_sizes(subject.folder))


#: The checks of a model file against its config, in order; each adds findings to the subject.
MODEL_RULES: list[ModelRule] = [rule_libtorch, rule_binding, rule_token_ids, rule_devices, rule_runs]


def check_libtorch(folder: Path, model_file: Path, module: Any, release: Release) -> list[Finding]:
    """Will the target's libtorch load this file? The saving torch comes from our build record, else the archive."""
    from compiler.compat import TorchVersion, assess
    from compiler.compat.torchscript import SavedBy, operators, saved_by_lower_bound
    from compiler.repository.record import RECORD, read_record

    saved_by = None
    recorded = (read_record(folder) or {}).get("torch_version")
    try:
        saved_by = SavedBy(TorchVersion.parse(str(recorded)), True, RECORD) if recorded else None
    except ValueError:
        pass
    saved_by = saved_by or saved_by_lower_bound(model_file)
    fit = assess(release, saved_by, operators(module))
    return [Finding.of(severity, n.message, folder.name, model_file, hint=n.hint, code="T202")
            for severity, notes in ((ERROR, fit.errors), (WARNING, fit.warnings), (INFO, fit.notes)) for n in notes]


def check_package(folder: Path, config: pb.ModelConfig, path: Path, model_file: Path) -> list[Finding]:
    """An AOTInductor package against its config: it loads, every config name is one the backend gives it (from
    its call spec), and a run on config-shaped inputs returns the declared outputs."""
    from compiler.backend.pytorch.pt2_names import CallSpec, UnsupportedSpec, load_package
    from compiler.export.aoti import enable_runtime_checks
    from compiler.export.messages import describe
    from compiler.sources.noise import silence_known_chatter

    silence_known_chatter()  # loading a CPU package logs torch's "No CUDA runtime is found"
    enable_runtime_checks()
    text = path.read_text()
    findings: list[Finding] = []

    def add(severity: str, message: str, needle: str | int | None = None, hint: str | None = None,
            code: str | None = None) -> None:
        line = needle if isinstance(needle, int) or needle is None else line_of(text, needle)
        findings.append(Finding.of(severity, message, folder.name, path, line, hint=hint, code=code))

    try:
        package = load_package(str(model_file))
        names = CallSpec.parse(*package.get_call_spec())
    except UnsupportedSpec as err:
        return [Finding.of(ERROR, f"{model_file.name}: {err}", folder.name, model_file, code="A201")]
    except Exception as err:
        return [Finding.of(ERROR, f"{model_file.name} is not a loadable AOTInductor package: {describe(err)}",
                           folder.name, model_file, hint="compile it with torch._inductor.aoti_compile_and_package "
                           "(with the torch of the target's image)", code="A201")]
    add(INFO, f"package call spec: {', '.join(names.forward_inputs)} -> {', '.join(names.forward_outputs)}",
        code="A202")
    missing = [t.name for t in config.input if t.name not in names.inputs]
    missing_out = [t.name for t in config.output if t.name not in names.outputs]
    for name in missing:
        add(ERROR, f"input '{name}' is not a name of this package; it takes {', '.join(names.forward_inputs)} "
            "(or INPUT__<n>)", f'"{name}"', "rename the input after the package's call spec", code="A203")
    for name in missing_out:
        add(ERROR, f"output '{name}' is not a name of this package; it returns {', '.join(names.forward_outputs)} "
            "(or OUTPUT__<n>)", f'"{name}"', "rename the output after the package's call spec", code="A203")
    index = {t.name: names.inputs[t.name] for t in config.input if t.name in names.inputs}
    fills = sorted(index.values()) == list(range(len(names.forward_inputs)))
    if not missing and not fills:
        add(ERROR, f"inputs {[t.name for t in config.input]} do not fill the package's "
            f"{len(names.forward_inputs)} inputs once each", "input", code="A203")
    if missing or missing_out or not fills:
        return findings
    out_index = {t.name: names.outputs[t.name] for t in config.output}
    _run(lambda *tensors: package.run(list(tensors)), config, text, index, config.max_batch_size > 0,
         functools.partial(add, code="A205"),
         out_index, example_sizes(folder))
    return findings


#: The size a -1 dim is run at when the build record gives no example (a repository we did not build).
VARIABLE_SIZE = 8


def example_sizes(folder: Path) -> dict[str, list[int]]:
    """Input name -> the example shape our build proved the model at (build.json), where it recorded one: a model
    whose -1 dims have a minimum (a convolution over at least 60 samples) runs there, not at 8."""
    from compiler.repository.record import read_record

    shapes = {}
    for item in (read_record(folder) or {}).get("inputs") or []:
        example = item.get("example") if isinstance(item, dict) else None
        if isinstance(example, dict) and example.get("shape"):
            shapes[str(item["name"])] = [int(v) for v in example["shape"]]
    return shapes


def batch_input_value(batch: Any, shape: list[int]) -> Any:
    """The tensor Triton's backend library makes for batch input `batch` of one request whose source input has
    `shape` (batch dim first): backend_input_collector.cc, BatchInputShape and ProcessBatchInput."""
    import torch

    dtype = torch.float32 if batch.data_type == pb.DataType.TYPE_FP32 else torch.int32
    count = math.prod(shape)
    kind = pb.BatchInput.Kind.Name(batch.kind)
    if kind == "BATCH_ITEM_SHAPE":
        return torch.tensor([shape[1:]] * shape[0], dtype=dtype).reshape(shape[0], len(shape) - 1)
    if kind == "BATCH_ITEM_SHAPE_FLATTEN":
        return torch.tensor(shape[1:] * shape[0], dtype=dtype)
    if kind == "BATCH_ACCUMULATED_ELEMENT_COUNT_WITH_ZERO":
        return torch.tensor([0, count], dtype=dtype)
    if kind == "BATCH_MAX_ELEMENT_COUNT_AS_SHAPE":
        return torch.zeros([count], dtype=dtype)
    return torch.tensor([count], dtype=dtype)  # BATCH_ELEMENT_COUNT, BATCH_ACCUMULATED_ELEMENT_COUNT


def _control_dtype(control: Any) -> Any:
    """The torch dtype the server gives a sequence control input: its false/true values' type, or CORRID's type."""
    import torch

    flag = control.control[0] if control.control else None
    if flag is None or flag.int32_false_true:
        return torch.int32
    if flag.fp32_false_true:
        return torch.float32
    if flag.bool_false_true:
        return torch.bool
    return datatypes.lookup(pb.DataType.Name(flag.data_type)).torch_dtype() if flag.data_type else torch.int32


def _run(module: Any, config: pb.ModelConfig, config_text: str, index: dict[str, int], batching: bool, add: Any,
         out_index: dict[str, int] | None = None, examples: dict[str, list[int]] | None = None) -> None:
    """Run the model on inputs shaped and typed as the config says (each -1 dim at the build's example size, else
    at VARIABLE_SIZE); compare what comes back."""
    import torch

    from compiler.export.messages import captured_stderr, first_line

    inputs: list[Any] = [None] * (len(config.input) + sum(len(b.target_name) for b in config.batch_input)
                                  + len(sequence_inputs(config)))
    shapes: dict[str, list[int]] = {}
    for tensor in config.input:
        shape = list(tensor.reshape.shape) if tensor.HasField("reshape") else list(tensor.dims)
        example = (examples or {}).get(tensor.name)
        if example is None or len(example) != len(shape):
            example = [VARIABLE_SIZE] * len(shape)
        shape = ([1] if batching else []) + [e if d == -1 else d for d, e in zip(shape, example)]
        shapes[tensor.name] = shape
        if tensor.allow_ragged_batch:  # the backend passes a ragged input flat: every request's elements in a row
            shape = [math.prod(shape)]
        type_name = pb.DataType.Name(tensor.data_type)
        row = datatypes.lookup(type_name)
        if row.torch_name is None:
            return
        dtype = row.torch_dtype()
        value = torch.randint(0, 2, shape) if not row.is_floating else torch.rand(shape)
        inputs[index[tensor.name]] = value.to(dtype)
    for batch in config.batch_input:  # as Triton's backend library makes them for this one request
        value = batch_input_value(batch, shapes[batch.source_input[0]] if batch.source_input else [1])
        for name in batch.target_name:
            inputs[index[name]] = value
    for control in config.sequence_batching.control_input:  # a sequence's first request: each flag 1, the id 1
        if control.name in index and index[control.name] < len(inputs):
            inputs[index[control.name]] = torch.ones([1, 1] if batching else [1], dtype=_control_dtype(control))
    try:
        with torch.no_grad(), captured_stderr():  # a package's runtime prints its errors on stderr too
            result = module(*inputs)
    except Exception as err:
        add(ERROR, f"the model fails on inputs shaped by the config: {type(err).__name__}: {first_line(err)}",
            "input", "the dims or dtypes do not fit the model")
        return
    outputs = [result] if isinstance(result, torch.Tensor) else list(result) if isinstance(result, (tuple, list)) else []
    if out_index is None:
        _, out_index = rules.bind_outputs([t.name for t in config.output])
    if len(outputs) != len(config.output):
        add(ERROR, f"the config declares {len(config.output)} outputs, the model returns {len(outputs)}", "output")
    for tensor in config.output:
        k = out_index[tensor.name]
        if k >= len(outputs) or not isinstance(outputs[k], torch.Tensor):
            continue
        got = outputs[k]
        got_type = datatypes.from_torch(got.dtype).config_name
        want_type = pb.DataType.Name(tensor.data_type)
        shape = list(got.shape)[1:] if batching else list(got.shape)
        declared = list(tensor.reshape.shape) if tensor.HasField("reshape") else list(tensor.dims)
        fits = len(declared) == len(shape) and all(d in (-1, s) for d, s in zip(declared, shape))
        if got_type != want_type or not fits:
            add(ERROR, f"output '{tensor.name}' is declared {want_type} {list(tensor.dims)}, the model gives "
                f"{got_type} {shape}", _line_in_block(config_text, tensor.name, "dims" if fits is False else "data_type"),
            f"set data_type: {got_type} and dims: {shape}")
