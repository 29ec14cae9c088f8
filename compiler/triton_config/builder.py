"""Fill tritonclient's ModelConfig message from a manifest entry and its derived outputs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tritonclient.grpc import model_config_pb2 as pb

from compiler.errors import ExportError, Problem
from compiler.manifest.raw_config import merge
from compiler.manifest.schema import (
    MERGE,
    QUEUE,
    SEQUENCE_CONTROLS,
    DynamicBatching,
    InputSpec,
    ModelSpec,
    OutputSpec,
    QueuePolicy,
)
from compiler.repository import layout


def _tensor(target: Any, spec: InputSpec | OutputSpec) -> None:
    target.name = spec.name
    target.data_type = pb.DataType.Value(spec.dtype)
    if isinstance(spec, InputSpec) and spec.format:
        target.format = pb.ModelInput.Format.Value(spec.format)
    if isinstance(spec, OutputSpec) and spec.labels:
        target.label_filename = layout.label_filename(spec.name)
    if spec.reshape is not None:  # clients send dims, the model sees the reshape ([] for a scalar)
        target.dims.extend(spec.dims)
        target.reshape.SetInParent()
        target.reshape.shape.extend(spec.reshape)
    elif spec.dims:
        target.dims.extend(spec.dims)
    else:
        # A scalar per example: Triton wants dims [1]; reshape tells it the model sees [].
        target.dims.append(1)
        target.reshape.SetInParent()


#: A derived queue never holds fewer requests than this (nor than max_batch_size): a build on a busy machine measures
#: a slow execution, and a queue sized by it alone refused the 8 concurrent requests of verify's check.
MIN_QUEUE_SIZE = 16


def queue_policy(settings: DynamicBatching, form: str, max_batch_size: int,
                 execution_ms: dict[int, float] | None) -> QueuePolicy | None:
    """The default queue policy: the manifest's, else derived from its latency budget (None where it is 0): a timeout
    of the budget, REJECT, and as many requests as the executions that fit in the budget take (max_batch_size per
    execution merged, one per execution queued), timed at that batch size by the build, and at least MIN_QUEUE_SIZE
    and max_batch_size. Unmeasured: the timeout alone."""
    if settings.default_queue_policy is not None:
        return settings.default_queue_policy
    budget = settings.latency_budget_ms
    if budget == 0:
        return None
    per_execution = max_batch_size if form == MERGE else 1
    took = (execution_ms or {}).get(per_execution)
    size = max(MIN_QUEUE_SIZE, max_batch_size, int(budget // took) * per_execution) if took else 0
    return QueuePolicy(timeout_action="REJECT", default_timeout_microseconds=budget * 1000,
                       allow_timeout_override=False, max_queue_size=size)


def _sequence(target: Any, model: ModelSpec) -> None:
    """ModelSequenceBatching: the strategy, and each control input with the values Triton gives it (0 and 1 as the
    input's datatype for a flag; the sequence id for CORRID)."""
    settings = model.sequence_batching
    assert settings is not None
    target.max_sequence_idle_microseconds = settings.max_sequence_idle_microseconds
    if settings.strategy == "oldest":
        target.oldest.max_candidate_sequences = settings.max_candidate_sequences or max(1, model.max_batch_size)
        target.oldest.max_queue_delay_microseconds = settings.max_queue_delay_microseconds
        target.oldest.preferred_batch_size.extend(settings.preferred_batch_size or [])
    else:
        target.direct.SetInParent()
    dtypes = {spec.name: spec.dtype for spec in model.inputs}
    for name, key in settings.control_inputs().items():
        item = target.control_input.add()
        item.name = name
        control = item.control.add()
        control.kind = pb.ModelSequenceBatching.Control.Kind.Value(SEQUENCE_CONTROLS[key][0])
        dtype = dtypes[name]
        if key == "corrid":
            control.data_type = pb.DataType.Value(dtype)
        elif dtype == "TYPE_FP32":
            control.fp32_false_true.extend([0.0, 1.0])
        elif dtype == "TYPE_BOOL":
            control.bool_false_true.extend([False, True])
        else:
            control.int32_false_true.extend([0, 1])


def _policy(target: Any, policy: QueuePolicy) -> None:
    target.timeout_action = pb.ModelQueuePolicy.TimeoutAction.Value(policy.timeout_action)
    target.default_timeout_microseconds = policy.default_timeout_microseconds
    target.allow_timeout_override = policy.allow_timeout_override
    target.max_queue_size = policy.max_queue_size


def build_config(model: ModelSpec, outputs: Sequence[OutputSpec], batching: str | None | bool = None,
                 execution_ms: dict[int, float] | None = None, kept: Sequence[int] = ()) -> pb.ModelConfig:
    """The ModelConfig of `model`; `batching` is the build's dynamic-batching decision (MERGE, QUEUE or None; default:
    as the manifest asks), `execution_ms` what it measured (batch size -> ms), which sizes a derived queue policy;
    `kept` the earlier version folders kept beside the built one (keep_versions)."""
    config = pb.ModelConfig()
    config.name = model.name
    config.platform = layout.PLATFORM_OF_EXPORT[model.export]
    if model.export == "aoti":  # as Triton's own QA configs for torch_aoti models do
        config.backend = layout.PYTORCH_BACKEND
    config.max_batch_size = model.max_batch_size
    controls = model.sequence_batching.control_inputs() if model.sequence_batching else {}
    for spec in model.inputs:
        if spec.name not in controls:  # a control is the sequence batcher's, not the client's
            _tensor(config.input.add(), spec)
    for out in outputs:
        _tensor(config.output.add(), out)
    for group in model.instance_group or []:
        item = config.instance_group.add()
        item.kind = pb.ModelInstanceGroup.Kind.Value(group.kind)
        item.count = group.count
        if group.gpus:
            item.gpus.extend(group.gpus)
    if batching is None:
        batching = (MERGE if model.batching_settings.merges else QUEUE) if model.batching_requested else None
    if batching:
        settings = model.batching_settings
        form = QUEUE if batching == QUEUE else MERGE
        target = config.dynamic_batching
        target.SetInParent()
        if form == QUEUE:  # one request per execution (DynamicBatching.merges says why this never merges)
            target.preferred_batch_size.append(1)
        else:
            target.max_queue_delay_microseconds = settings.max_queue_delay_microseconds
            target.preferred_batch_size.extend(settings.preferred_batch_size or [])
        target.preserve_ordering = settings.preserve_ordering
        policy = queue_policy(settings, form, model.max_batch_size, execution_ms)
        if policy is not None:
            _policy(target.default_queue_policy, policy)
        target.priority_levels = settings.priority_levels
        target.default_priority_level = settings.default_priority_level
        for level, level_policy in sorted((settings.priority_queue_policy or {}).items()):
            _policy(target.priority_queue_policy[level], level_policy)
    if model.sequence_batching is not None:
        _sequence(config.sequence_batching, model)
    for key, value in model.parameter_strings().items():
        config.parameters[key].string_value = value
    if model.warmup:
        config.model_warmup.extend(model_warmups(model))
    versions = sorted({*kept, model.version})
    if model.version_policy == "latest":
        config.version_policy.latest.num_versions = len(versions)
    elif model.version_policy == "all":
        config.version_policy.all.SetInParent()
    else:
        config.version_policy.specific.versions.extend(versions)
    if model.response_cache:
        config.response_cache.enable = True
    try:
        return merge(config, model.config)  # `config:`: what the manifest has no key for
    except ValueError as err:
        field = str(err).split(":")[0]
        raise ExportError(Problem(str(err), model=model.name, field=field if field.startswith("config.") else "config",
                                  hint="leave the field to the build (or to its manifest key), or drop it from "
                                  "config:")) from None


class _Shaped:
    def __init__(self, name: str, dtype: str, shape: list[int]) -> None:
        self.name, self.dtype, self.shape = name, dtype, shape


def example_shape(spec: InputSpec) -> list[int]:
    """An input's per-example shape at its example (the dims, each -1 at example.shape's size)."""
    shape = spec.example.shape if spec.example and spec.example.shape else None
    return [s if d == -1 else d for d, s in zip(spec.dims, shape)] if shape else list(spec.dims) or [1]


def _io(target: Any, name: str, dtype: str, dims: Sequence[int], label_filename: str | None = None) -> None:
    target.name = name
    target.data_type = pb.DataType.Value(dtype)
    target.dims.extend(dims)
    if label_filename:
        target.label_filename = label_filename


def step_config(name: str, max_batch_size: int, inputs: Sequence[Any], outputs: Sequence[Any],
                parameters: dict[str, str], warmup: list[pb.ModelWarmup] | None = None) -> pb.ModelConfig:
    """A pipeline's Python-backend step: `inputs`/`outputs` have name, dtype (TYPE_*) and dims. Dynamic batching
    on (a batch of requests is one execute(): the tokenizer pads them to one length, so the model after it merges
    them too), one CPU instance."""
    config = pb.ModelConfig()
    config.name = name
    config.backend = "python"
    config.max_batch_size = max_batch_size
    for tensor in inputs:
        _io(config.input.add(), tensor.name, tensor.dtype, tensor.dims)
    for tensor in outputs:
        _io(config.output.add(), tensor.name, tensor.dtype, tensor.dims, getattr(tensor, "labels", None))
    config.dynamic_batching.SetInParent()
    group = config.instance_group.add()
    group.kind = pb.ModelInstanceGroup.KIND_CPU
    group.count = 1
    for key, value in sorted(parameters.items()):
        config.parameters[key].string_value = value
    config.model_warmup.extend(warmup or [])
    config.version_policy.specific.versions.append(1)
    return config


def ensemble_config(name: str, max_batch_size: int, inputs: Sequence[Any], outputs: Sequence[Any],
                    steps: Sequence[tuple[str, dict[str, str], dict[str, str]]]) -> pb.ModelConfig:
    """An ensemble: `steps` are (model, input_map, output_map), in order."""
    config = pb.ModelConfig()
    config.name = name
    config.platform = layout.ENSEMBLE_PLATFORM
    config.max_batch_size = max_batch_size
    for tensor in inputs:
        _io(config.input.add(), tensor.name, tensor.dtype, tensor.dims)
    for tensor in outputs:
        _io(config.output.add(), tensor.name, tensor.dtype, tensor.dims, getattr(tensor, "labels", None))
    for model, input_map, output_map in steps:
        step = config.ensemble_scheduling.step.add()
        step.model_name = model
        step.model_version = -1
        for key, value in input_map.items():
            step.input_map[key] = value
        for key, value in output_map.items():
            step.output_map[key] = value
    config.version_policy.specific.versions.append(1)
    return config


def model_warmups(model: ModelSpec) -> list[pb.ModelWarmup]:
    """The model_warmup samples of `warmup: true`: zeros of each input's example shape, at batch 1 and the maximum."""
    return warmups([_Shaped(spec.name, spec.dtype, example_shape(spec)) for spec in model.inputs], model.max_batch_size)


def warmups(inputs: Sequence[Any], max_batch_size: int, files: dict[str, str] | None = None) -> list[pb.ModelWarmup]:
    """model_warmup samples at batch 1 and at max_batch_size: each input zeros of its shape (`inputs` have name,
    dtype and a concrete shape), or the file `files` names (in <model>/warmup/)."""
    samples = []
    sizes = [1] + ([max_batch_size] if max_batch_size > 1 else [])
    for batch in sizes:
        sample = pb.ModelWarmup()
        sample.name = f"batch {batch}"
        sample.batch_size = batch
        sample.count = 1
        for tensor in inputs:
            item = sample.inputs[tensor.name]
            item.data_type = pb.DataType.Value(tensor.dtype)
            item.dims.extend(tensor.shape)
            if files and tensor.name in files:
                item.input_data_file = files[tensor.name]
            else:
                item.zero_data = True
        samples.append(sample)
    return samples
