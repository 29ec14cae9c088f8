"""Hostile requests: what a malformed or malicious client sends, and what each must be answered with.

One generator for the build (which runs each against the export in-process: a guard that is not there fails the
build) and for `verify` and `soak` (which send them to the served model, then a good request that must still be
answered correctly). From a model's guards (guards.py):

* a value just outside an index input's range, above and below (refused);
* NaN and Inf in a float input (refused by default; served as they are with `guard: {finite: false}`, and the
  build says where the export's answer differs from eager's);
* a -1 dim of size 0, and one past the bound the package found (refused);
* dims that must stay equal, of different sizes (refused by an AOTI package's input checks; TorchScript answers
  as eager PyTorch does);
* and, in `verify` only, what Triton itself refuses before any backend runs: a wrong dtype, a batch above
  `max_batch_size`.

    for case in hostile_cases(model, guards, flavour="aoti"):
        case.label, case.inputs, case.expect      # "KWARGS[input_ids]: 30522 (above its range)", {...}, "refused"
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler import datatypes
from compiler.datatypes import Tensors
from compiler.export.examples import Plan, make_inputs, plans_for
from compiler.export.guards import Guards
from compiler.manifest.schema import ModelSpec

#: What a hostile request must get: an error ("refused"); or the same as eager PyTorch ("eager": an answer equal
#: to eager's, or an error where eager raises); or anything but a crash ("any").
REFUSED, EAGER, ANY = "refused", "eager", "any"


@dataclass(frozen=True)
class HostileCase:
    label: str
    inputs: Tensors  # by config input name
    expect: str
    #: the request's datatype per input where it is not the config's (a wrong dtype), as the wire names it
    datatypes: tuple[tuple[str, str], ...] = ()
    #: False for what only the serving backend refuses (an empty tensor among dims that must stay equal: the
    #: package's own checks skip empty tensors, and its kernels would read past it): never run in-process
    in_process: bool = True


def _base(model: ModelSpec) -> Tensors:
    plan = plans_for(model)[0]
    batch = 1 if model.max_batch_size > 0 else None
    return make_inputs(model, Plan("hostile", batch, plan.sizes, seed=77))


def _with_sizes(model: ModelSpec, axes: list[tuple[str, int]], size: int) -> Tensors:
    """The base inputs with each (input, per-example dim) of `axes` at `size`."""
    plan = plans_for(model)[0]
    sizes = {key: list(shape) for key, shape in plan.sizes.items()}
    for name, dim in axes:
        sizes[name][dim] = size
    return make_inputs(model, Plan("hostile size", 1 if model.max_batch_size > 0 else None, sizes, seed=78))


def hostile_cases(model: ModelSpec, guards: Guards | None, flavour: str) -> list[HostileCase]:
    """`flavour`: "aoti" or "torchscript" (what refuses unequal sizes differs)."""
    cases: list[HostileCase] = []
    offset = 1 if model.max_batch_size > 0 else 0
    equal = [list(group) for group in guards.equal] if guards is not None else []
    for spec in model.inputs:
        guard = guards.of(spec.name) if guards is not None and spec.name in {g.name for g in guards.inputs} else None
        row = datatypes.lookup(spec.dtype)
        if guard is not None and guard.values is not None:
            for value, where in ((guard.values.high, "above"), (guard.values.low - 1, "below")):
                if abs(value) == float("inf") or (row.is_integer and not _fits(row.api_name, value)):
                    continue
                inputs = _base(model)
                inputs[spec.name] = inputs[spec.name].clone()
                inputs[spec.name].view(-1)[0] = int(value) if row.is_integer else value
                cases.append(HostileCase(f"{spec.name}: {_number(value)} ({where} its range)", inputs, REFUSED))
        if row.is_floating:
            for value, word in ((float("nan"), "NaN"), (float("inf"), "Inf")):
                inputs = _base(model)
                inputs[spec.name] = inputs[spec.name].clone()
                inputs[spec.name].view(-1)[0] = value
                # served as they are (`guard: {finite: false}`): the build says where the answer differs from eager's
                cases.append(HostileCase(f"{spec.name}: {word}", inputs,
                                         REFUSED if guard is not None and guard.finite else ANY))
        for size in guard.sizes if guard is not None else []:
            if size.what == "batch dim":
                continue  # Triton refuses a batch above max_batch_size itself (verify sends one)
            axis = (spec.name, size.dim - offset)
            group = next((g for g in equal if axis in g), [axis])
            if axis != group[0]:
                continue  # one case per group of dims that stay equal, all of them resized
            if size.low >= 1:
                cases.append(HostileCase(f"{spec.name} {size.what}: size {size.low - 1}",
                                         _with_sizes(model, group, size.low - 1), REFUSED))
            if size.high is not None:
                cases.append(HostileCase(f"{spec.name} {size.what}: size {size.high + 1}",
                                         _with_sizes(model, group, size.high + 1), REFUSED))
    for group in equal:
        (first, dim), (second, other) = group[0], group[1]
        current = plans_for(model)[0].sizes[first][dim]
        longer = _base(model)
        longer[first] = _with_sizes(model, [(first, dim)], current + 1)[first]
        cases.append(HostileCase(f"{first} dim {dim} longer than {second} dim {other}", longer,
                                 REFUSED if flavour == "aoti" else EAGER))
        empty = _base(model)
        empty[second] = _with_sizes(model, [(second, other)], 0)[second]
        cases.append(HostileCase(f"{second} dim {other} empty, {first} dim {dim} not", empty,
                                 REFUSED if flavour == "aoti" else EAGER, in_process=flavour != "aoti"))
    return cases


def triton_cases(model: ModelSpec) -> list[HostileCase]:
    """What tritonserver refuses before any backend runs (sent by verify, never run in-process)."""
    spec = model.inputs[0]
    row = datatypes.lookup(spec.dtype)
    wrong = "FP64" if row.api_name != "FP64" else "FP32"
    cases = [HostileCase(f"{spec.name}: {wrong} for {row.api_name}", _base(model), REFUSED, ((spec.name, wrong),),
                         in_process=False)]
    if model.max_batch_size > 0:
        plan = plans_for(model)[0]
        too_many = make_inputs(model, Plan("hostile batch", model.max_batch_size + 1, plan.sizes, seed=79))
        cases.append(HostileCase(f"batch {model.max_batch_size + 1} (max_batch_size {model.max_batch_size})",
                                 too_many, REFUSED, in_process=False))
    return cases


def _fits(api_name: str, value: float) -> bool:
    import numpy as np

    info = np.iinfo(np.dtype(api_name.lower()))
    return bool(info.min <= value <= info.max)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
