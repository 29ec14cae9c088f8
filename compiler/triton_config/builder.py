"""Fill tritonclient's ModelConfig message from a manifest entry and its derived outputs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tritonclient.grpc import model_config_pb2 as pb

from compiler.manifest.schema import InputSpec, ModelSpec, OutputSpec
from compiler.repository import layout


def _tensor(target: Any, spec: InputSpec | OutputSpec) -> None:
    target.name = spec.name
    target.data_type = pb.DataType.Value(spec.dtype)
    if isinstance(spec, OutputSpec) and spec.labels:
        target.label_filename = layout.label_filename(spec.name)
    if spec.dims:
        target.dims.extend(spec.dims)
    else:
        # A scalar per example: Triton wants dims [1]; reshape tells it the model sees [].
        target.dims.append(1)
        target.reshape.SetInParent()


def build_config(model: ModelSpec, outputs: Sequence[OutputSpec], batching: bool | None = None) -> pb.ModelConfig:
    """The ModelConfig of `model`; `batching` is the build's dynamic-batching decision (default: as asked)."""
    config = pb.ModelConfig()
    config.name = model.name
    config.platform = layout.PLATFORM_OF_EXPORT[model.export]
    if model.export == "aoti":  # as Triton's own QA configs for torch_aoti models do
        config.backend = layout.PYTORCH_BACKEND
    config.max_batch_size = model.max_batch_size
    for spec in model.inputs:
        _tensor(config.input.add(), spec)
    for out in outputs:
        _tensor(config.output.add(), out)
    for group in model.instance_group or []:
        item = config.instance_group.add()
        item.kind = pb.ModelInstanceGroup.Kind.Value(group.kind)
        item.count = group.count
        if group.gpus:
            item.gpus.extend(group.gpus)
    if model.batching_requested if batching is None else batching:
        settings = model.batching_settings
        target = config.dynamic_batching
        target.SetInParent()
        target.max_queue_delay_microseconds = settings.max_queue_delay_microseconds
        target.preferred_batch_size.extend(settings.preferred_batch_size or [])
        target.preserve_ordering = settings.preserve_ordering
    for key, value in model.parameter_strings().items():
        config.parameters[key].string_value = value
    if model.warmup:
        config.model_warmup.extend(model_warmups(model))
    config.version_policy.specific.versions.append(model.version)
    return config


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
        _io(config.output.add(), tensor.name, tensor.dtype, tensor.dims)
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
        _io(config.output.add(), tensor.name, tensor.dtype, tensor.dims)
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
