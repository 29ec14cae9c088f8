"""Example inputs: the trace-time inputs, and the variations that prove the export.

Variable (-1) dims that share an example size move together (a sequence
length shared by input_ids and attention_mask must stay equal), so each
*group* gets its own variation, and so does the batch dim.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from compiler import datatypes
from compiler.errors import ExportError, Problem
from compiler.manifest.schema import InputSpec, ModelSpec


@dataclass(frozen=True)
class Axis:
    input: str
    dim: int  # index in the per-example dims

    def describe(self) -> str:
        return f"{self.input} dim {self.dim}"


@dataclass
class Plan:
    label: str
    batch: int | None
    sizes: dict[str, list[int]]  # per-example shape of each input
    seed: int
    varied: list[Axis] = field(default_factory=list)
    trace_size: int | None = None
    new_size: int | None = None

    def shape(self, name: str) -> list[int]:
        per_example = self.sizes[name]
        return [self.batch, *per_example] if self.batch is not None else list(per_example)


def _alt(size: int) -> int:
    return size - max(1, size // 4) if size >= 4 else size + 1


def _example_shapes(model: ModelSpec) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    base: dict[str, list[int]] = {}
    alt: dict[str, list[int]] = {}
    missing = []
    for spec in model.inputs:
        shape = spec.example.shape if spec.example and spec.example.shape else None
        if shape is None:
            if -1 in spec.dims:
                missing.append(spec.name)
                continue
            shape = list(spec.dims)
        base[spec.name] = list(shape)
        given_alt = spec.example.alt_shape if spec.example and spec.example.alt_shape else None
        alt[spec.name] = list(given_alt) if given_alt else [
            _alt(size) if want == -1 else size for want, size in zip(spec.dims, shape)
        ]
    if missing:
        raise ExportError([
            Problem(f"input '{name}' has variable (-1) dims but no example.shape", model=model.name,
                    field="inputs.example.shape", hint="e.g. `example: {shape: [3, 224, 224]}`: the size to trace at")
            for name in missing
        ])
    return base, alt


def plans_for(model: ModelSpec) -> list[Plan]:
    base, alt = _example_shapes(model)
    batching = model.max_batch_size > 0
    b0 = min(2, model.max_batch_size) if batching else None
    plans = [Plan("example", b0, base, seed=0), Plan("new values", b0, base, seed=1)]
    if batching and model.max_batch_size >= 2:
        plans.append(Plan("batch", 1, base, seed=2, varied=[], trace_size=b0, new_size=1))
    groups: dict[tuple[int, int], list[Axis]] = {}
    for spec in model.inputs:
        for dim, want in enumerate(spec.dims):
            if want == -1:
                key = (base[spec.name][dim], alt[spec.name][dim])
                groups.setdefault(key, []).append(Axis(spec.name, dim))
    for number, ((old, new), axes) in enumerate(sorted(groups.items())):
        if old == new:
            continue
        sizes = {name: list(shape) for name, shape in base.items()}
        for axis in axes:
            sizes[axis.input][axis.dim] = new
        plans.append(Plan(f"dims {', '.join(a.describe() for a in axes)}", b0, sizes, seed=3 + number,
                          varied=axes, trace_size=old, new_size=new))
    return plans


def make_inputs(model: ModelSpec, plan: Plan) -> dict[str, Any]:
    import torch

    generator = torch.Generator().manual_seed(1234 + plan.seed)
    tensors = {}
    for spec in model.inputs:
        tensors[spec.name] = _random(spec, plan.shape(spec.name), generator)
    return tensors


def _random(spec: InputSpec, shape: list[int], generator: Any) -> Any:
    import torch

    row = datatypes.lookup(spec.dtype)
    dtype = row.torch_dtype()
    low = spec.example.low if spec.example and spec.example.low is not None else None
    high = spec.example.high if spec.example and spec.example.high is not None else None
    if row.api_name == "BOOL":
        return torch.randint(0, 2, shape, generator=generator).bool()
    if row.is_integer:
        lo = int(low) if low is not None else 0
        hi = int(high) if high is not None else lo + 2
        return torch.randint(lo, hi, shape, generator=generator, dtype=torch.int64).to(dtype)
    bottom = float(low) if low is not None else 0.0
    top = float(high) if high is not None else 1.0
    return (torch.rand(shape, generator=generator, dtype=torch.float64) * (top - bottom) + bottom).to(dtype)
