"""Example inputs: the trace-time inputs, and the variations that prove the export.

Variable (-1) dims that share an example size move together (a sequence
length shared by input_ids and attention_mask must stay equal), so each
*group* gets its own variation, and so does the batch dim.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from compiler import datatypes
from compiler.datatypes import Tensors
from compiler.manifest.schema import InputSpec, ModelSpec

#: Floats are drawn from [-1, 1) unless the manifest gives example.low/high: signed values, so that a model whose
#: output shape depends on the signs (x[x > 0]) shows it between the proof's runs.
DEFAULT_FLOAT_RANGE = (-1.0, 1.0)
#: Integers are drawn from [low, low + 2) unless example.high is given (ids, masks and flags of 0 and 1).
DEFAULT_INTEGER_SPAN = 2


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
    #: which part of each float input's range values are drawn from: all of it, or its top or bottom quarter
    values: str = "full"

    def shape(self, name: str) -> list[int]:
        per_example = self.sizes[name]
        return [self.batch, *per_example] if self.batch is not None else list(per_example)


def _alt(size: int) -> int:
    return size - max(1, size // 4) if size >= 4 else size + 1


def _example_shapes(model: ModelSpec) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    base: dict[str, list[int]] = {}
    alt: dict[str, list[int]] = {}
    for spec in model.inputs:  # the schema requires example.shape wherever dims has a -1
        # the model's own view: a reshape is what forward() receives (its sizes are fixed, no -1 varies)
        shape = spec.example.shape if spec.example and spec.example.shape and spec.reshape is None \
            else spec.model_dims
        base[spec.name] = list(shape)
        given_alt = spec.example.alt_shape if spec.example and spec.example.alt_shape else None
        alt[spec.name] = list(given_alt) if given_alt else [
            _alt(size) if want == -1 else size for want, size in zip(spec.model_dims, shape)
        ]
    return base, alt


def resized(plan: Plan, axes: list[Axis], size: int, label: str, seed: int = 20) -> Plan:
    """`plan` with every dim of `axes` at `size`."""
    sizes = {name: list(shape) for name, shape in plan.sizes.items()}
    for axis in axes:
        sizes[axis.input][axis.dim] = size
    first = axes[0] if axes else None
    return Plan(label, plan.batch, sizes, seed=seed, varied=list(axes),
                trace_size=plan.sizes[first.input][first.dim] if first else None, new_size=size)


def plans_for(model: ModelSpec, groups: list[list[Axis]] | None = None,
              smallest: list[int] | None = None) -> list[Plan]:
    """The proof's plans. `groups`: the -1 dims that vary as one size (what torch.export found for a package);
    without them, dims at the same index of different inputs with the same example sizes vary as one (input_ids
    and attention_mask), and the dims of one input vary each on its own (an image's height and width).
    `smallest`: the smallest size of each group (a package's guards), proved too, each group on its own."""
    base, alt = _example_shapes(model)
    batching = model.max_batch_size > 0
    b0 = min(2, model.max_batch_size) if batching else None
    plans = [Plan("example", b0, base, seed=0), Plan("new values", b0, base, seed=1)]
    if any(datatypes.lookup(spec.dtype).is_floating for spec in model.inputs):
        # A branch on a threshold (x.mean() > 0.5) may take the same side for two draws from the whole range;
        # draws from its top and bottom quarters take both sides of any threshold inside the range.
        plans += [Plan("values near the top of the range", b0, base, seed=10, values="top"),
                  Plan("values near the bottom of the range", b0, base, seed=11, values="bottom")]
    if batching and model.max_batch_size >= 2:
        plans.append(Plan("batch", 1, base, seed=2, varied=[], trace_size=b0, new_size=1))
    if groups is None:
        by_key: dict[tuple[int, int, int], list[Axis]] = {}
        for spec in model.inputs:
            for dim, want in enumerate(spec.model_dims):
                if want == -1:
                    by_key.setdefault((base[spec.name][dim], alt[spec.name][dim], dim), []).append(Axis(spec.name, dim))
        groups = [axes for _, axes in sorted(by_key.items())]
    for number, axes in enumerate(groups):
        first = axes[0]
        old, new = base[first.input][first.dim], alt[first.input][first.dim]
        if old == new:
            continue
        sizes = {name: list(shape) for name, shape in base.items()}
        for axis in axes:
            sizes[axis.input][axis.dim] = new
        plans.append(Plan(f"dims {', '.join(a.describe() for a in axes)}", b0, sizes, seed=3 + number,
                          varied=axes, trace_size=old, new_size=new))
    for number, (axes, least) in enumerate(zip(groups, smallest or [])):
        if least < base[axes[0].input][axes[0].dim]:
            plans.append(resized(plans[0], axes, least, f"dims {', '.join(a.describe() for a in axes)} at their "
                                 f"smallest ({least})", seed=30 + number))
    return plans


def make_inputs(model: ModelSpec, plan: Plan) -> Tensors:
    import torch

    generator = torch.Generator().manual_seed(1234 + plan.seed)
    tensors = {}
    for spec in model.inputs:
        tensors[spec.name] = _random(spec, plan.shape(spec.name), generator, plan.values)
    return tensors


def _random(spec: InputSpec, shape: list[int], generator: Any, values: str = "full") -> Any:
    import torch

    row = datatypes.lookup(spec.dtype)
    dtype = row.torch_dtype()
    low = spec.example.low if spec.example and spec.example.low is not None else None
    high = spec.example.high if spec.example and spec.example.high is not None else None
    if row.api_name == "BOOL":
        return torch.randint(0, 2, shape, generator=generator).bool()
    if row.is_integer:
        lo = int(low) if low is not None else 0
        hi = int(high) if high is not None else lo + DEFAULT_INTEGER_SPAN
        guard = spec.guard if spec.guard is not None and not isinstance(spec.guard, bool) else None
        if guard is not None:  # a declared guard is a contract: the proof stays inside it
            lo = max(lo, int(guard.low)) if guard.low is not None else lo
            hi = min(hi, int(guard.high)) if guard.high is not None else hi
            hi = max(hi, lo + 1)
        return torch.randint(lo, hi, shape, generator=generator, dtype=torch.int64).to(dtype)
    bottom = float(low) if low is not None else DEFAULT_FLOAT_RANGE[0]
    top = float(high) if high is not None else DEFAULT_FLOAT_RANGE[1]
    quarter = (top - bottom) / 4
    if values == "top":
        bottom = top - quarter
    elif values == "bottom":
        top = bottom + quarter
    return (torch.rand(shape, generator=generator, dtype=torch.float64) * (top - bottom) + bottom).to(dtype)
