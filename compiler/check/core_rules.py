"""Triton core's own validation of a model config, as `check` rules.

Each rule restates a check of Triton core's src/model_config_utils.cc (ValidateIOShape, ValidateModelConfig, the
sequence-control helpers, ValidateEnsembleSchedulingConfig, the batch input/output checks) or of the ensemble
graph it builds when an ensemble loads (src/ensemble_utils.cc), and is confirmed by a case in tests/check/cases/
that the embedded tritonserver (2.51, release 24.10) refuses for the same fault. The quoted words are the server's.

    config_rules(config, add)                 # one config: add(severity, message, needle, hint)
    ensemble_findings(configs, repository)    # across the repository: what an ensemble's steps need of models
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tritonclient.grpc import model_config_pb2 as pb

from compiler.check.findings import ERROR, WARNING, Finding, line_of
from compiler.releases import Release
from compiler.repository import layout

Add = Callable[..., None]
WILDCARD = -1
_CONTROL = pb.ModelSequenceBatching.Control
_FLAG_KINDS = (_CONTROL.CONTROL_SEQUENCE_START, _CONTROL.CONTROL_SEQUENCE_END, _CONTROL.CONTROL_SEQUENCE_READY)
_CORRID_TYPES = {pb.TYPE_UINT64, pb.TYPE_INT64, pb.TYPE_UINT32, pb.TYPE_INT32, pb.TYPE_STRING}


def _quoted(name: str) -> str:
    return f'"{name}"'


def _count(dims: Any) -> int:
    """Element count; -1 when any dim is variable (core's GetElementCount)."""
    total = 1
    for size in dims:
        if size == WILDCARD:
            return WILDCARD
        total *= size
    return total


def _trunks(dims: Any) -> list[int]:
    """Element counts of the runs of fixed dims between variable ones ([2, 4, -1, 6] -> [8, 6])."""
    counts, current = [], 1
    for size in dims:
        if size == WILDCARD:
            counts.append(current)
            current = 1
        else:
            current *= size
    return [*counts, current]


#: The input formats that name an image layout (ModelInput.Format): each takes exactly 3 dims.
IMAGE_FORMATS = (pb.ModelInput.FORMAT_NCHW, pb.ModelInput.FORMAT_NHWC)


def io_shape_rules(config: pb.ModelConfig, add: Add) -> None:
    """ValidateIOShape, for every input and output: dims present, each >= 1 or -1; a reshape with the same
    element count and the same variable-size trunks; no empty reshape without a batch dim."""
    for kind, tensor in [("input", t) for t in config.input] + [("output", t) for t in config.output]:
        where = _quoted(tensor.name)
        if not tensor.dims:
            add(ERROR, f"model {kind} '{tensor.name}' must specify 'dims' (Triton refuses empty dims, with a batch "
                "dim too)", where, "a scalar per example is dims: [1] with reshape: { shape: [] } (batching models)")
            continue
        if any(d < 1 and d != WILDCARD for d in tensor.dims):
            add(ERROR, f"model {kind} '{tensor.name}' dims {list(tensor.dims)}: dimension must be integer >= 1, or "
                "-1 to indicate a variable-size dimension", where)
        if kind == "input" and tensor.format in IMAGE_FORMATS and len(tensor.dims) != 3:
            # ValidateModelInput (core r24.10 src/model_config_utils.cc:1750)
            add(ERROR, f"model input '{tensor.name}': NHWC/NCHW require 3 dims, it has {list(tensor.dims)}", where,
                "give an image input its 3 dims (without the batch dim), or drop format")
        if not tensor.HasField("reshape"):
            continue
        shape = list(tensor.reshape.shape)
        if not shape and config.max_batch_size == 0:
            add(ERROR, f"model {kind} '{tensor.name}' cannot have empty reshape for non-batching model (scalar "
                "tensors are not supported)", where, "keep dims: [1] without reshape, or give the model a batch dim")
            continue
        if any(d < 1 and d != WILDCARD for d in shape):
            add(ERROR, f"model {kind} '{tensor.name}' reshape {shape}: reshape dimensions must be integer >= 1, or -1",
                where)
            continue
        # core's GetElementCount is 0 for an empty shape: an empty reshape takes dims of one element
        dims_count, shape_count = _count(tensor.dims), (_count(shape) if shape else 0)
        if dims_count != shape_count and (shape_count != 0 or dims_count != 1):
            add(ERROR, f"model {kind} '{tensor.name}' has different size for dims and reshape ({list(tensor.dims)} "
                f"against {shape})", where, "a reshape keeps the element count")
        elif dims_count == WILDCARD and len(_trunks(tensor.dims)) != len(_trunks(shape)):
            add(ERROR, f"model {kind} '{tensor.name}' has different number of variable-size dimensions for dims and "
                f"reshape ({list(tensor.dims)} against {shape})", where, "one -1 in reshape for each in dims")
        elif dims_count == WILDCARD and _trunks(tensor.dims) != _trunks(shape):
            add(ERROR, f"model {kind} '{tensor.name}' has different size for dims and reshape ({list(tensor.dims)} "
                f"against {shape}: the fixed dims between the -1s must hold as many elements)", where)


def batching_rules(config: pb.ModelConfig, add: Add) -> None:
    """Dynamic batching: preferred sizes positive; priority queue policies within the levels; preserve_ordering
    with one level and no DELAY timeouts. Sequence batching: the oldest strategy's preferred sizes; the direct
    strategy's slot utilisation."""
    batching = config.dynamic_batching
    for size in batching.preferred_batch_size:
        if size <= 0:
            add(ERROR, f"preferred_batch_size {size}: dynamic batching preferred size must be positive",
                "preferred_batch_size", "sizes from 1 to max_batch_size")
    levels = batching.priority_levels
    for level in sorted(batching.priority_queue_policy):
        if levels and not 1 <= level <= levels:
            add(ERROR, f"priority_queue_policy for level {level}: priority queue policy must have priority level in "
                f"range [1, {levels}]", "priority_queue_policy", f"key a level in 1..{levels}")
    if batching.preserve_ordering:
        if levels > 1:
            add(ERROR, f"preserve_ordering with {levels} priority levels: only one priority level is allowed when "
                "'preserve_ordering' is true", "preserve_ordering", "drop preserve_ordering or the priority levels")
        policies = [batching.default_queue_policy, *batching.priority_queue_policy.values()]
        if any(p.default_timeout_microseconds and p.timeout_action == pb.ModelQueuePolicy.DELAY for p in policies):
            add(ERROR, "queue policy can not have DELAY as timeout action when 'preserve_ordering' is true",
                "DELAY", "use timeout_action: REJECT, or drop preserve_ordering")
    oldest = config.sequence_batching.oldest
    for size in oldest.preferred_batch_size:
        if size <= 0 or size > config.max_batch_size:
            add(ERROR, f"oldest preferred_batch_size {size}: sequence batching preferred batch size must be positive "
                f"and <= max batch size ({config.max_batch_size})", "preferred_batch_size",
                f"sizes from 1 to {config.max_batch_size}")
    utilisation = config.sequence_batching.direct.minimum_slot_utilization
    if not 0.0 <= utilisation <= 1.0:
        add(ERROR, f"minimum_slot_utilization {utilisation}: sequence batching minimum slot utilization must be in "
            "range (0.0, 1.0]", "minimum_slot_utilization")


def sequence_control_rules(config: pb.ModelConfig, add: Add) -> None:
    """GetBooleanSequenceControlProperties / GetTypedSequenceControlProperties: one tensor per control kind; a flag
    says false and true once (int32, fp32 or bool, exactly 2 values); CORRID has an integer data_type and no values."""
    seen: dict[int, str] = {}
    for tensor in config.sequence_batching.control_input:
        for control in tensor.control:
            kind = _CONTROL.Kind.Name(control.kind)
            if control.kind in seen and seen[control.kind] != tensor.name:
                add(ERROR, f"sequence batching specifies multiple {kind} tensors ('{seen[control.kind]}' and "
                    f"'{tensor.name}')", _quoted(tensor.name), f"one tensor carries {kind}")
            seen.setdefault(control.kind, tensor.name)
            value_lists = [f for f in ("int32_false_true", "fp32_false_true", "bool_false_true")
                           if len(getattr(control, f))]
            if control.kind in _FLAG_KINDS:
                if len(value_lists) > 1:
                    add(ERROR, f"control '{tensor.name}' ({kind}) gives {' and '.join(value_lists)}: sequence "
                        "batching specifies more than one from 'int32_false_true', 'fp32_false_true' and "
                        "'bool_false_true'", _quoted(tensor.name), "keep one of them")
                elif value_lists and len(getattr(control, value_lists[0])) != 2:
                    add(ERROR, f"control '{tensor.name}' ({kind}) {value_lists[0]} must have exactly 2 entries (false, "
                        "true)", _quoted(tensor.name))
            elif control.kind == _CONTROL.CONTROL_SEQUENCE_CORRID:
                if value_lists:
                    add(ERROR, f"control '{tensor.name}' ({kind}) gives {value_lists[0]}: a correlation ID control "
                        "takes a data_type, not false/true values", _quoted(tensor.name))
                elif control.data_type not in _CORRID_TYPES:
                    add(ERROR, f"control '{tensor.name}' ({kind}): unexpected data type for control "
                        f"CONTROL_SEQUENCE_CORRID ({pb.DataType.Name(control.data_type)}); allowed are TYPE_UINT64, "
                        "TYPE_INT64, TYPE_UINT32, TYPE_INT32 and TYPE_STRING", _quoted(tensor.name),
                        "data_type: TYPE_UINT64 (or another allowed type)")


_ONE_SOURCE = "expects 1 source input"


def batch_io_rules(config: pb.ModelConfig, add: Add) -> None:
    """Batch inputs: one source input each, data type INT32 or FP32. Batch outputs: one source input that the
    config has, targets that are its outputs."""
    inputs = {t.name for t in config.input}
    outputs = {t.name for t in config.output}
    for item in config.batch_input:
        kind = pb.BatchInput.Kind.Name(item.kind)
        if len(item.source_input) != 1:
            add(ERROR, f"batch input kind '{kind}' {_ONE_SOURCE}, got {len(item.source_input)}",
                _quoted(item.target_name[0]) if item.target_name else "batch_input", "name one source_input")
        if item.data_type not in (pb.TYPE_INT32, pb.TYPE_FP32):
            add(ERROR, f"batch input '{', '.join(item.target_name)}' is {pb.DataType.Name(item.data_type)}: batch "
                "input data type must be TYPE_INT32 or TYPE_FP32", "batch_input", "data_type: TYPE_INT32")
    for item in config.batch_output:
        kind = pb.BatchOutput.Kind.Name(item.kind)
        if len(item.source_input) != 1:
            add(ERROR, f"batch output kind '{kind}' {_ONE_SOURCE}, got {len(item.source_input)}", "batch_output",
                "name one source_input")
        for source in item.source_input:
            if source not in inputs:
                add(ERROR, f"batch_output reads unknown source input name '{source}'", _quoted(source),
                    f"name one of {', '.join(sorted(inputs))}")
        for target in item.target_name:
            if target not in outputs:
                add(ERROR, f"batch_output names unknown target output name '{target}'", _quoted(target),
                    f"name one of {', '.join(sorted(outputs))}")
    for item in config.batch_output:  # within one batch_output (two batch_outputs may name it: 2.51 loads that)
        targets = list(item.target_name)
        for target in sorted({t for t in targets if targets.count(t) > 1}):
            add(ERROR, f"target output name '{target}' can only be specified once (a batch_output names it "
                f"{targets.count(target)} times)", "batch_output", "name each output once in target_name")


def instance_rules(config: pb.ModelConfig, add: Add) -> None:
    """GPU ids are 0 or more (tritonserver: 'specifies invalid or unsupported gpu id')."""
    for group in config.instance_group:
        for gpu in group.gpus:
            if gpu < 0:
                add(ERROR, f"an instance group specifies invalid or unsupported gpu id {gpu}", "gpus",
                    "list GPU ids from 0 on, or leave gpus out to use every GPU")


def scheduling_rules(config: pb.ModelConfig, add: Add) -> None:
    """Ensemble-only settings off ensembles and optimization off ensembles; instance-group profiles only on
    TensorRT; a model that names neither platform nor backend."""
    is_ensemble = config.platform == layout.ENSEMBLE_PLATFORM
    if config.HasField("ensemble_scheduling") and not is_ensemble:
        add(ERROR, f"ensemble scheduling cannot be set for model '{config.name}' whose platform is not ensemble",
            "ensemble_scheduling", "set platform: \"ensemble\" (and drop backend), or remove ensemble_scheduling")
    if is_ensemble and config.HasField("optimization"):
        add(ERROR, "optimization should not be specified for an ensemble", "optimization",
            "set optimization on the composing models")
    if is_ensemble and not config.ensemble_scheduling.step:
        add(ERROR, "must specify 'step' for ensemble", "ensemble_scheduling", "add the steps the ensemble runs")
    for group in config.instance_group:
        if group.profile and config.platform != "tensorrt_plan" and config.backend != "tensorrt":
            add(ERROR, f"instance group '{group.name or config.name}' specifies profile field which is only "
                "supported for TensorRT models", "profile", "remove profile:")
    if config.runtime and (config.runtime.startswith("/") or ".." in Path(config.runtime).parts):
        add(ERROR, f"runtime '{config.runtime}' points outside the backend's folder; Triton looks for it there and "
            "in the model's folders only (unable to find backend library)", "runtime",
            "name a file of the backend folder (e.g. libtriton_pytorch.so, or model.py for a Python-based backend)")


def ensemble_dataflow_rules(config: pb.ModelConfig, add: Add) -> None:
    """ValidateEnsembleSchedulingConfig's dataflow: from the ensemble's inputs, a tensor is ready once every input
    of the step that writes it is; an output never ready is not written, and a tensor that is never ready or never
    read is unused (steps in a loop: a needs b, b needs a). Inputs no step reads and outputs no step writes are
    said by rules.py."""
    if config.platform != layout.ENSEMBLE_PLATFORM:
        return
    steps = config.ensemble_scheduling.step
    ready = {t.name for t in config.input}
    changed = True
    while changed:
        changed = False
        for step in steps:
            if set(step.input_map.values()) <= ready and not set(step.output_map.values()) <= ready:
                ready |= set(step.output_map.values())
                changed = True
    read = {v for step in steps for v in step.input_map.values()}
    written = {v for step in steps for v in step.output_map.values()}
    outputs = {t.name for t in config.output}
    for name in sorted(outputs & written - ready):
        add(ERROR, f"output '{name}' for the ensemble is not written: the steps that write it wait on tensors that "
            "never become ready", _quoted(name), "every step's inputs must come from the ensemble's inputs")
    for name in sorted((read | written) - outputs):
        if name not in ready or name not in read:
            add(ERROR, f"ensemble tensor '{name}' is unused in the ensemble (never ready, or never read)",
                _quoted(name), "map it into a later step's input_map, or drop it")


def warmup_rules(config: pb.ModelConfig, add: Add) -> None:
    """A warmup sample runs through the model at load: its batch within max_batch_size, every required input
    given once with a data source and the model's data type, no other input."""
    inputs = {t.name: t for t in config.input}
    for sample in config.model_warmup:
        where = _quoted(sample.name)
        if config.max_batch_size > 0 and sample.batch_size > config.max_batch_size:
            add(ERROR, f"warmup sample '{sample.name}': batch size {sample.batch_size}, max allowed is "
                f"{config.max_batch_size}", where, f"batch_size 1..{config.max_batch_size}")
        for key, value in sorted(sample.inputs.items()):
            if key not in inputs:
                add(ERROR, f"warmup sample '{sample.name}' gives input '{key}', which the model does not have",
                    _quoted(key), f"name one of {', '.join(sorted(inputs))}")
                continue
            if not value.WhichOneof("input_data_type"):
                add(ERROR, f"warmup sample '{sample.name}': warmup setting expects input '{key}' to have "
                    "input_data_type set", _quoted(key), "zero_data: true, random_data: true or input_data_file")
            if value.data_type != inputs[key].data_type:
                add(ERROR, f"warmup sample '{sample.name}': input '{key}' data-type is "
                    f"{pb.DataType.Name(value.data_type)}, but the model expects "
                    f"{pb.DataType.Name(inputs[key].data_type)}", _quoted(key))
        missing = sorted(n for n, t in inputs.items() if n not in sample.inputs and not t.optional)
        if missing:
            add(ERROR, f"warmup sample '{sample.name}' is missing required input(s) {missing}", where,
                "give every input the model requires")


def output_rules(config: pb.ModelConfig, add: Add) -> None:
    """A PyTorch-backend model answers with outputs the config lists: without one, NVIDIA's backend refuses it
    (r26.05 src/pt/model_instance_state.cc:1497, r24.10 src/libtorch.cc:1146; a Python backend model may declare
    none, and tritonserver 2.51 loads it)."""
    if layout.is_pytorch(config) and not config.output:
        add(ERROR, "model configuration must contain at least one output: the PyTorch backend refuses a model with "
            "none", "input", "declare the model's outputs")


def basic_rules(config: pb.ModelConfig, add: Add) -> None:
    """Triton core's checks of a config on its own (model_config_utils.cc), each confirmed by a case in
    tests/check/cases/: a negative max_batch_size, a tensor without data_type, preferred sizes above the maximum,
    priority levels, batch inputs reading inputs the config lacks, KIND_CPU groups listing GPUs; and dynamic
    batching without a batch dim (tritonserver 2.51 loads it: a warning, as nothing is ever merged)."""
    if config.max_batch_size < 0:
        add(ERROR, f"max_batch_size {config.max_batch_size} is negative; Triton refuses it when it polls the "
            "repository", "max_batch_size", "0 for a model without a batch dim, else its largest batch", code="C101")
    for kind, tensor in [("input", t) for t in config.input] + [("output", t) for t in config.output]:
        if tensor.data_type == pb.TYPE_INVALID:
            add(ERROR, f"{kind} '{tensor.name}' has no data_type; Triton refuses the model", f'"{tensor.name}"',
                "add data_type: TYPE_FP32 (or the tensor's type)", code="C102")
    if config.max_batch_size > 0:
        for size in config.dynamic_batching.preferred_batch_size:
            if size > config.max_batch_size:
                add(ERROR, f"preferred_batch_size {size} is above max_batch_size {config.max_batch_size}; Triton "
                    "refuses it when it polls the repository", "preferred_batch_size",
                    f"keep preferred sizes within 1..{config.max_batch_size}", code="C103")
    levels = config.dynamic_batching.priority_levels
    default = config.dynamic_batching.default_priority_level
    if levels and not 1 <= default <= levels:
        add(ERROR, f"default_priority_level {default} lies outside the {levels} priority levels (1..{levels}); "
            "Triton refuses it", "default_priority_level", f"a level in 1..{levels}", code="C104")
    inputs = {t.name for t in config.input}
    for item in config.batch_input:
        for source in item.source_input:
            if source not in inputs:
                add(ERROR, f"batch_input '{', '.join(item.target_name)}' reads source input '{source}', which the "
                    "config does not have; Triton refuses the model", f'"{source}"',
                    f"name one of {', '.join(sorted(inputs))}", code="C105")
    for group in config.instance_group:
        if group.kind == pb.ModelInstanceGroup.KIND_CPU and group.gpus:
            add(ERROR, f"a KIND_CPU instance group lists GPUs {list(group.gpus)}; Triton refuses the model",
                "gpus", "drop gpus: from the KIND_CPU group, or make it KIND_GPU", code="C106")
    if config.HasField("dynamic_batching") and config.max_batch_size == 0:
        # tritonserver 2.51 loads it (tests/check/cases/dynamic_batching_without_batch), but nothing is ever merged
        add(WARNING, "dynamic_batching with max_batch_size 0: without a batch dim the batcher never merges requests",
            "dynamic_batching", "set max_batch_size >= 1, or remove dynamic_batching", code="C107")


_FALSE_TRUE = ("int32_false_true", "fp32_false_true", "bool_false_true")


def sequence_flag_rules(config: pb.ModelConfig, add: Add) -> None:
    """Sequence batching controls: one kind per control tensor; a start/end/ready flag says its false and true."""
    kinds_of: dict[str, list[str]] = {}
    for tensor in config.sequence_batching.control_input:
        kinds = [pb.ModelSequenceBatching.Control.Kind.Name(c.kind) for c in tensor.control]
        kinds_of.setdefault(tensor.name, []).extend(kinds)
        for control, kind in zip(tensor.control, kinds):
            if control.kind in _FLAG_KINDS and not any(getattr(control, f) for f in _FALSE_TRUE):
                add(ERROR, f"control '{tensor.name}' ({kind}) gives no false/true values; Triton refuses it",
                    f'"{tensor.name}"', "add int32_false_true: [0, 1] (or fp32_false_true, bool_false_true)")
    for name, kinds in kinds_of.items():
        if len(set(kinds)) > 1:
            add(ERROR, f"control tensor '{name}' carries several control kinds ({', '.join(kinds)}); Triton refuses "
                "it", f'"{name}"', "one control tensor per kind")


def ensemble_config_rules(config: pb.ModelConfig, add: Add) -> None:
    """One ensemble's own config: no backend or instance groups, and every tensor of its dataflow used."""
    if config.platform != layout.ENSEMBLE_PLATFORM:
        return
    if config.backend:
        add(ERROR, f"an ensemble takes no backend (it has '{config.backend}'); Triton refuses it", "backend",
            "remove backend: from the ensemble")
    if config.instance_group:
        add(ERROR, "an ensemble takes no instance_group (its steps' models have theirs); Triton refuses it",
            "instance_group", "remove instance_group from the ensemble")
    if config.model_warmup:
        add(ERROR, "an ensemble takes no model_warmup (warm its steps' models); Triton refuses it", "model_warmup",
            "move the warmup into the composing models' configs")
    written: dict[str, int] = {}
    for number, step in enumerate(config.ensemble_scheduling.step):
        for value in step.output_map.values():
            if value in written:
                add(ERROR, f"ensemble tensor '{value}' is written by step {written[value]} and again by step "
                    f"{number}; Triton refuses the ensemble", f'"{value}"', "give each step output its own tensor")
            written.setdefault(value, number)
    consumed = {value for step in config.ensemble_scheduling.step for value in step.input_map.values()}
    produced = {value for step in config.ensemble_scheduling.step for value in step.output_map.values()}
    for tensor in config.input:
        if tensor.name not in consumed:
            add(ERROR, f"ensemble input '{tensor.name}' is not used by any step; Triton refuses the ensemble",
                f'"{tensor.name}"', "map it into a step's input_map, or remove it")
    for tensor in config.output:
        if tensor.name not in produced:
            add(ERROR, f"ensemble output '{tensor.name}' is written by no step; Triton refuses the ensemble",
                f'"{tensor.name}"', "map a step's output to it in output_map, or remove it")


def platform_rules(config: pb.ModelConfig, add: Add, release: Release) -> None:
    """A platform the release's tritonserver knows (torch_aoti from 26.03 on)."""
    known = known_platforms(release)
    if config.platform and config.platform not in known:
        add(ERROR, f"platform '{config.platform}' is unknown to Triton {release}; it refuses the model when it "
            "polls the repository", "platform", f"one of {', '.join(sorted(known))}, or a backend:", code="R101")


def known_platforms(release: Release) -> set[str]:
    """Platforms the release's tritonserver recognises (torch_aoti from 26.03 on)."""
    from compiler.releases import AOTI_SINCE

    known = set(layout.PLATFORM_FILENAMES) | {layout.ENSEMBLE_PLATFORM}
    return known if release.at_least(AOTI_SINCE) else known - {layout.AOTI_PLATFORM}


#: Every rule of one config, in the order findings are reported, with the rulebook code of what it finds (None: each
#: finding names its own).
CONFIG_RULES: tuple[tuple[Callable[[pb.ModelConfig, Add], None], str | None], ...] = (
    (basic_rules, None), (ensemble_config_rules, "E101"), (io_shape_rules, "C110"), (batching_rules, "C120"),
    (sequence_control_rules, "C130"), (sequence_flag_rules, "C131"), (batch_io_rules, "C140"),
    (scheduling_rules, "C150"), (ensemble_dataflow_rules, "E102"), (warmup_rules, "C160"), (instance_rules, "C170"),
    (output_rules, "C180"))


def config_rules(config: pb.ModelConfig, add: Add, release: Release) -> None:
    platform_rules(config, add, release)
    for rule, code in CONFIG_RULES:
        rule(config, functools.partial(add, code=code) if code else add)


def runtime_findings(folder: Path, config: pb.ModelConfig, path: Path) -> list[Finding]:
    """A `runtime` tritonserver must find: a library of the backend (libtriton_<backend>.so, or model.py for a
    Python-based one), else a file in the model folder or a version folder ('unable to find backend library')."""
    runtime = config.runtime
    if not runtime or "/" in runtime:
        return []  # none, or one outside the backend folder (check_config refuses that)
    backend = config.backend or ("pytorch" if layout.is_pytorch(config) else "")
    known = {f"libtriton_{backend}.so", "model.py"} if backend else {"model.py"}
    places = [folder, *(p for p in folder.iterdir() if p.is_dir() and p.name.isdigit())] if folder.is_dir() else []
    if runtime in known or any((place / runtime).is_file() for place in places):
        return []
    return [Finding.of(ERROR, f"unable to find backend library '{runtime}': the {backend or 'model'}'s backend has "
                       "no such library and the model folder no such file", folder.name, path,
                       line_of(path.read_text(), "runtime"), hint=f"name libtriton_{backend}.so (or model.py), or "
                       "put the file in the model folder", code="C190")]


# -- ensembles across the repository (ensemble_utils.cc, model_repository_manager.cc) ----------------
def _shape(config: pb.ModelConfig, tensor: Any) -> list[int]:
    return ([WILDCARD] if config.max_batch_size > 0 else []) + list(tensor.dims)


def _conflict(one: list[int], other: list[int]) -> bool:
    return len(one) != len(other) or any(a != b and WILDCARD not in (a, b) for a, b in zip(one, other))


def _versions(folder: Path) -> set[int]:
    return {int(p.name) for p in folder.iterdir() if p.is_dir() and p.name.isdigit()} if folder.is_dir() else set()


def ensemble_findings(configs: dict[str, tuple[Path, pb.ModelConfig]]) -> list[Finding]:
    """Each ensemble against the models its steps run: the step's model and version exist; every name a step maps
    is an input or output of that model and every input of it is mapped; an ensemble tensor has one data type and
    one shape wherever it appears; the ensemble's max_batch_size is within each step's; no ensemble runs itself."""
    findings: list[Finding] = []
    for name, (path, config) in sorted(configs.items()):
        if config.platform != layout.ENSEMBLE_PLATFORM:
            continue
        text = path.read_text()

        def add(message: str, needle: str | None, hint: str | None = None, path: Path = path, text: str = text,
                name: str = name) -> None:
            findings.append(Finding.of(ERROR, message, name, path, line_of(text, needle) if needle else None, hint=hint,
                                       code="E104"))

        cycle = _cycle(name, configs)
        if cycle:
            add(f"circular dependency between ensembles: {' -> '.join(cycle)}", _quoted(cycle[1]),
                "an ensemble cannot run itself, directly or through another ensemble")
            continue
        seen: dict[str, tuple[int, list[int], str]] = {}  # tensor -> (data type, shape, the model it came from)
        for tensor in [*config.input, *config.output]:
            seen[tensor.name] = (tensor.data_type, _shape(config, tensor), name)
        for step in config.ensemble_scheduling.step:
            if step.model_name not in configs:
                continue  # check_ensembles says so
            step_path, step_config = configs[step.model_name]
            if step.model_version > 0 and step.model_version not in _versions(step_path.parent):
                add(f"ensemble '{name}' depends on '{step.model_name}' whose required version {step.model_version} "
                    "is not in the repository", _quoted(step.model_name), "model_version: -1 (the latest), or add it")
            if step_config.max_batch_size < config.max_batch_size:
                add(f"ensemble {name} allows maximum batch size {config.max_batch_size}, but it contains model "
                    f"{step.model_name} which only allows maximum batch size to be {step_config.max_batch_size}",
                    "max_batch_size", f"max_batch_size <= {step_config.max_batch_size}")
            step_inputs = {t.name: t for t in step_config.input}
            step_outputs = {t.name: t for t in step_config.output}
            for key, tensor in step.input_map.items():
                if key not in step_inputs:
                    add(f"ensemble tensor {tensor} is mapping to non-existing input {key} in model {step.model_name}",
                        _quoted(key), f"inputs of {step.model_name}: {', '.join(sorted(step_inputs))}")
                    continue
                _agree(seen, tensor, step_inputs[key], step_config, step.model_name, name, add)
            for key, tensor in step.output_map.items():
                if key not in step_outputs:
                    add(f"ensemble tensor {tensor} is mapped from non-existing output {key} in model "
                        f"{step.model_name}", _quoted(key),
                        f"outputs of {step.model_name}: {', '.join(sorted(step_outputs))}")
                    continue
                _agree(seen, tensor, step_outputs[key], step_config, step.model_name, name, add)
            for input_name, tensor in sorted(step_inputs.items()):
                if input_name not in step.input_map and not tensor.optional:
                    add(f"input {input_name} in model {step.model_name} is not mapped to any ensemble tensors",
                        _quoted(step.model_name), f"map {input_name} in the step's input_map")
        for step, labels in _mixed_decoupled_inputs(config, configs):
            add(f"in ensemble {name}, step of model '{step.model_name}' receives inputs originated from different "
                f"decoupled models ({', '.join(labels)})", _quoted(step.model_name),
                "feed the step from one decoupled model's responses only (or from none)")
    return findings


def _mixed_decoupled_inputs(config: pb.ModelConfig, configs: dict[str, tuple[Path, pb.ModelConfig]]
                            ) -> list[tuple[Any, list[str]]]:
    """Steps whose inputs come from different decoupled origins, as core labels them (r24.10
    src/ensemble_scheduler/ensemble_utils.cc:306-355): the ensemble's inputs are one origin; a step's outputs are a
    new origin when its model is decoupled (each such step its own, the same model twice included), else its inputs'
    origin; a step whose inputs carry two origins is refused. -> (step, the origins said)."""
    origin: dict[str, str] = {tensor.name: "the ensemble's inputs" for tensor in config.input}
    pending = list(enumerate(config.ensemble_scheduling.step))
    mixed = []
    progressed = True
    while pending and progressed:
        progressed = False
        for number, step in list(pending):
            sources = [origin.get(tensor) for tensor in step.input_map.values()]
            if any(source is None for source in sources):
                continue  # not ready yet
            pending.remove((number, step))
            progressed = True
            distinct = sorted({str(source) for source in sources})
            if len(distinct) > 1:
                mixed.append((step, distinct))
            model = configs.get(step.model_name)
            decoupled = model is not None and model[1].model_transaction_policy.decoupled
            label = f"step {number} ('{step.model_name}')" if decoupled else \
                (distinct[0] if distinct else "the ensemble's inputs")
            for tensor in step.output_map.values():
                origin[tensor] = label
    return mixed


def _agree(seen: dict[str, tuple[int, list[int], str]], tensor: str, io: Any, model: pb.ModelConfig,
           model_name: str, ensemble: str, add: Callable[..., None]) -> None:
    shape = _shape(model, io)
    if tensor not in seen:
        seen[tensor] = (io.data_type, shape, model_name)
        return
    data_type, known, origin = seen[tensor]
    if data_type != io.data_type:
        add(f"in ensemble {ensemble}, ensemble tensor {tensor}: inconsistent data type: "
            f"{pb.DataType.Name(data_type)} is inferred from model {origin} while {pb.DataType.Name(io.data_type)} "
            f"is inferred from model {model_name}", _quoted(tensor), "one data type for the tensor everywhere")
    elif _conflict(known, shape):
        add(f"in ensemble {ensemble}, ensemble tensor {tensor}: inconsistent shape: {_text(known)} is inferred "
            f"from model {origin} while {_text(shape)} is inferred from model {model_name}", _quoted(tensor),
            "one shape for the tensor everywhere (and the same batching)")


def _text(shape: list[int]) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


def _cycle(start: str, configs: dict[str, tuple[Path, pb.ModelConfig]]) -> list[str] | None:
    """A path of ensembles from `start` back to itself, if one exists."""
    def walk(name: str, path: list[str]) -> list[str] | None:
        config = configs.get(name, (None, None))[1]
        if config is None or config.platform != layout.ENSEMBLE_PLATFORM:
            return None
        for step in config.ensemble_scheduling.step:
            if step.model_name == start:
                return [*path, step.model_name]
            if step.model_name not in path:
                found = walk(step.model_name, [*path, step.model_name])
                if found:
                    return found
        return None

    return walk(start, [start])
