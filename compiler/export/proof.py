"""Prove an export: same outputs as eager PyTorch, at the example and beyond it.

Outputs are compared per tensor within a per-dtype tolerance (integers and
bools exactly). The runs at other sizes also give the output signature: the
count, dtype and dims of every output, a dim that changes becoming -1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from compiler import datatypes
from compiler.errors import ExportError, Problem
from compiler.export.examples import Plan
from compiler.manifest.schema import ModelSpec

DEFAULT_TOLERANCE = {
    "FP16": (1e-2, 1e-2),
    "BF16": (2e-2, 2e-2),
    "FP32": (1e-4, 1e-4),
    "FP64": (1e-8, 1e-7),
}


@dataclass(frozen=True)
class Tol:
    atol: float
    rtol: float


def tolerance_for(model: ModelSpec, api_name: str) -> Tol:
    if model.tolerance is not None:
        return Tol(model.tolerance.atol, model.tolerance.rtol)
    atol, rtol = DEFAULT_TOLERANCE.get(api_name, (0.0, 0.0))
    return Tol(atol, rtol)


@dataclass(frozen=True)
class DerivedOutput:
    dtype: str  # TYPE_*
    dims: list[int]


class UnservableOutput(TypeError):
    """The model returns something Triton's PyTorch backend cannot serve (nested tuples, lists of dicts, ...)."""


def flatten(result: Any) -> list[Any]:
    import torch

    if isinstance(result, torch.Tensor):
        return [result]
    if isinstance(result, (tuple, list)):
        items: list[Any] = []
        for item in result:
            if isinstance(item, (tuple, list)):
                raise UnservableOutput("the model returns nested tuples; Triton's PyTorch backend takes a Tensor or a "
                                       "flat tuple of Tensors")
            if not isinstance(item, torch.Tensor):
                raise UnservableOutput(f"an output is {type(item).__name__}; only Tensors can be served")
            items.append(item)
        return items
    raise UnservableOutput(f"the model returns {type(result).__name__}; Triton's PyTorch backend needs a Tensor, or "
                           "a tuple or dict of Tensors")


def mismatch(model: ModelSpec, eager: list[Any], exported: list[Any]) -> str | None:
    """A sentence describing the first difference, or None when equal within tolerance."""
    import torch

    if len(eager) != len(exported):
        return f"eager returns {len(eager)} outputs, the export {len(exported)}"
    for k, (want, got) in enumerate(zip(eager, exported)):
        if want.dtype != got.dtype:
            return f"output {k}: eager {want.dtype}, export {got.dtype}"
        if tuple(want.shape) != tuple(got.shape):
            return f"output {k}: eager shape {list(want.shape)}, export shape {list(got.shape)}"
        row = datatypes.from_torch(want.dtype)
        tol = tolerance_for(model, row.api_name)
        if want.is_floating_point():
            diff = (want.double() - got.double()).abs().nan_to_num(0).max().item() if want.numel() else 0.0
            if not torch.allclose(want, got, atol=tol.atol, rtol=tol.rtol, equal_nan=True):
                return f"output {k}: values differ by up to {diff:.3g} (atol {tol.atol}, rtol {tol.rtol})"
            scale = _scale(want)
            if scale < tol.atol and diff > tol.rtol * scale:
                # Every value is below the absolute tolerance, which would accept anything: compare relatively.
                return (f"output {k}: values differ by up to {diff:.3g}, {diff / scale if scale else float('inf'):.3g} "
                        f"times the output's own scale ({scale:.3g}, below atol {tol.atol}, so compared relative to "
                        f"it with rtol {tol.rtol})")
        elif not torch.equal(want, got):
            count = int((want != got).sum().item())
            return f"output {k}: {count} of {want.numel()} values differ ({row.config_name} compares exactly)"
    return None


def _scale(tensor: Any) -> float:
    """The largest finite magnitude of a float tensor (0 for an empty or all-zero one)."""
    if not tensor.numel():
        return 0.0
    return float(tensor.double().abs().nan_to_num(0, posinf=0, neginf=0).max().item())


def weak_outputs(model: ModelSpec, runs: list[tuple[Plan, list[Any]]]) -> list[str]:
    """Outputs on which the proof shows little: constant at every proved input (all zeros, say, from random
    weights), where any export that gets shapes and dtypes right would pass. Tiny outputs are compared relative to
    their own scale (see mismatch), so they are not weak."""
    first = runs[0][1]
    weak = []
    for k, tensor in enumerate(first):
        values = [outputs[k] for _, outputs in runs if k < len(outputs)]
        if not tensor.is_floating_point() or not all(v.numel() for v in values):
            continue
        constant = all(bool((v == v.flatten()[0]).all()) for v in values)
        if constant and len({float(v.flatten()[0]) for v in values}) == 1:
            value = float(tensor.flatten()[0])
            weak.append(f"output {k} is {value:g} everywhere, at every proved input: the proof shows its shape and "
                        "dtype, not its values (random weights?). Give real weights (source.weights), or inputs in "
                        "the range the model expects (example.low/high)")
    return weak


def explain(model: ModelSpec, plan: Plan, detail: str, warnings: list[str]) -> Problem:
    """Why an export failed under `plan`, naming the input or dim, with the fix."""
    seen = f"\n    tracer said: {warnings[0]}" if warnings else ""
    script = "use `export: script` so the code is compiled instead of recorded"
    if plan.label == "example":
        message = f"the export differs from eager PyTorch on the very inputs it was traced with: {detail}"
        hint = "the model is not deterministic in eval mode (dropout? randomness in forward?)"
    elif plan.label == "new values" or plan.values != "full":
        names = ", ".join(spec.name for spec in model.inputs)
        message = (f"same shapes, new values of {names}: {detail}; the trace froze one side of a branch that "
                   "depends on the input values")
        hint = script
    elif plan.label == "batch":
        message = (f"batch dim: traced at batch {plan.trace_size}, at batch {plan.new_size} {detail}; "
                   "the trace baked the batch size (e.g. int(x.shape[0]) or x.view(2, ...))")
        hint = script + ", or compute shapes with tensor ops"
    else:
        dims = ", ".join(axis.describe() for axis in plan.varied)
        message = (f"{dims} (declared -1): traced at {plan.trace_size}, at {plan.new_size} {detail}; the trace "
                   f"baked this size (e.g. int(x.shape[1])) or a branch on it")
        hint = script + f", or declare the dim as {plan.trace_size} if the model only takes that size"
    return Problem(message + seen, model=model.name, field="export", hint=hint)


def derive_outputs(model: ModelSpec, runs: list[tuple[Plan, list[Any]]]) -> list[DerivedOutput]:
    first_plan, first = runs[0]
    derived = []
    for k, tensor in enumerate(first):
        dtype = datatypes.from_torch(tensor.dtype).config_name
        shapes = []
        for plan, outputs in runs:
            if len(outputs) != len(first):
                raise ExportError(Problem(f"the model returns {len(first)} outputs at the example but {len(outputs)} "
                                          f"under '{plan.label}'", model=model.name, field="outputs"))
            shape = list(outputs[k].shape)
            if plan.batch is not None:
                if not shape or shape[0] != plan.batch:
                    raise ExportError(Problem(
                        f"output {k} has shape {shape} for a batch of {plan.batch}; with max_batch_size > 0 every "
                        "output must lead with the batch dim", model=model.name, field="max_batch_size",
                        hint="set max_batch_size: 0 if the model does not batch along dim 0"))
                shape = shape[1:]
            shapes.append(shape)
        if len({len(s) for s in shapes}) != 1:
            raise ExportError(Problem(f"output {k} changes rank across input sizes: {shapes}", model=model.name,
                                      field="outputs"))
        dims = [size if all(s[i] == size for s in shapes) else -1 for i, size in enumerate(shapes[0])]
        derived.append(DerivedOutput(dtype, dims))
    return derived
