"""Inference requests built from a manifest entry: one place that knows how."""

from __future__ import annotations

from typing import Any

from compiler import datatypes
from compiler.datatypes import Sendable
from compiler.manifest.schema import ModelSpec


def infer_inputs(module: Any, model: ModelSpec, arrays: Sendable,
                 sent_as: dict[str, str] | None = None) -> list[Any]:
    """`module` is tritonclient.http or tritonclient.grpc; arrays are numpy (or torch) by input name. `sent_as`:
    input name -> the datatype to send it as where that is not the config's (a hostile request's wrong dtype)."""
    items = []
    controls = model.sequence_batching.control_inputs() if model.sequence_batching else {}
    for spec in model.inputs:
        if spec.name in controls:  # the sequence batcher fills it
            continue
        value = arrays[spec.name]
        array = datatypes.to_numpy(value) if hasattr(value, "numpy") else value
        if spec.reshape is not None:  # drawn as the model sees it; clients send dims (Triton reshapes it back)
            array = array.reshape([*array.shape[:array.ndim - len(spec.reshape)], *spec.dims])
        wire = (sent_as or {}).get(spec.name, datatypes.lookup(spec.dtype).api_name)
        if wire != datatypes.lookup(spec.dtype).api_name:
            array = array.astype(datatypes.lookup(wire).numpy_dtype())
        item = module.InferInput(spec.name, list(array.shape), wire)
        item.set_data_from_numpy(array)
        items.append(item)
    return items
