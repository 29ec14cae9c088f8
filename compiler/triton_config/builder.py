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
    config.version_policy.specific.versions.append(model.version)
    return config
