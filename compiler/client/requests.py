"""Inference requests built from a manifest entry: one place that knows how."""

from __future__ import annotations

from typing import Any

from compiler import datatypes
from compiler.manifest.schema import ModelSpec


def infer_inputs(module: Any, model: ModelSpec, arrays: dict[str, Any]) -> list[Any]:
    """`module` is tritonclient.http or tritonclient.grpc; arrays are numpy (or torch) by input name."""
    items = []
    for spec in model.inputs:
        value = arrays[spec.name]
        array = value.numpy() if hasattr(value, "numpy") else value
        item = module.InferInput(spec.name, list(array.shape), datatypes.lookup(spec.dtype).api_name)
        item.set_data_from_numpy(array)
        items.append(item)
    return items
