"""Guards compiled into the export, so that no request can crash the process that serves it.

An AOTInductor package runs its kernels without bounds checks that raise: an out-of-vocabulary token id reaches
an embedding's gather inside an OpenMP region, where the kernel's `TORCH_CHECK` can only `abort()` the process
(with NVIDIA's pytorch_backend, the whole tritonserver). So the build compiles checks in front of the model, each
raising a catchable error whose message starts with ``invalid request:``:

* **values** of an input that indexes (an embedding, `index_select`, `gather`, advanced indexing) lie
  in the rows it indexes: found by running the eager model once on the example under a dispatch mode that follows
  each input through ops that keep its values (views, casts, copies) to the op that indexes with it; a manifest's
  `guard: {low, high}` declares a range (it must lie within the derived one);
* **non-finite floats**: NaN or Inf in a float input is refused (the default: ResNet-50's package answers finite,
  confident logits for an all-NaN image where eager answers NaN); `guard: {finite: false}` serves them as they are;
* **sizes** (AOTI): the batch dim from 1 to `max_batch_size`, each -1 dim from its minimum (1, or the model's own)
  to the bound torch.export found; dims that must stay equal are checked by AOTInductor's own input checks
  (`AOTI_RUNTIME_CHECK_INPUTS=1`, which the embedded server and every file `deploy` writes set), as the compiled code reads
  one of their sizes only.

The checks run before the model and its kernels: `torch._assert_async` (AOTI; a reduction then a scalar test,
outside any parallel region, which raises a `std::runtime_error` the runtime turns into an error code) or a
scripted function (TorchScript). An index input is also clamped into its range behind its check, so that no
kernel order can index outside it.

    guards = derive(model, module, binding, example)          # Guards, recorded in build.json
    served = guarded(module, binding, guards, "aoti")          # the module the export is made from
"""

from __future__ import annotations

import functools
import weakref
from dataclasses import dataclass, field
from typing import Any

from compiler import datatypes
from compiler.datatypes import Tensors
from compiler.export.binding import Binding
from compiler.manifest.schema import InputSpec, ModelSpec

#: Every guard's message starts with this (NVIDIA's backend answers it, as every exception of a model, with 500).
INVALID = "invalid request:"
#: What the error of a refused request carries: a guard's words, or those of AOTInductor's own input checks (sizes
#: outside the package's range, an empty dim, dims that must stay equal), which run before the guards.
REFUSED = (INVALID, "input_handles[", "expected size ", "dim value is too")


@dataclass(frozen=True)
class ValueRange:
    low: float  # inclusive
    high: float  # exclusive
    source: str  # what the range comes from: "an embedding of 30522 rows", "the manifest"

    def text(self) -> str:
        return f"[{_number(self.low)}, {_number(self.high)})"


@dataclass(frozen=True)
class SizeRange:
    dim: int  # in the request's tensor, the batch dim included
    low: int
    high: int | None
    what: str  # "batch dim", "dim 1"

    def text(self) -> str:
        return f"{self.what} {self.low}..{self.high}" if self.high is not None else f"{self.what} {self.low} or more"


@dataclass
class InputGuards:
    name: str
    values: ValueRange | None = None
    finite: bool = False  # refuse NaN and Inf
    sizes: list[SizeRange] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.values is None and not self.finite and not self.sizes

    def describe(self) -> str:
        parts = []
        if self.values is not None:
            parts.append(f"values in {self.values.text()} ({self.values.source})")
        if self.finite:
            parts.append("finite (NaN and Inf refused)")
        parts += [s.text() for s in self.sizes]
        return f"{self.name}: " + ", ".join(parts)


@dataclass
class Guards:
    inputs: list[InputGuards]
    #: dims that must stay equal, (input name, per-example dim) each, checked by AOTInductor's input checks
    #: (AOTI_RUNTIME_CHECK_INPUTS), not compiled in: the compiled code reads the size of one of them only
    equal: list[list[tuple[str, int]]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return all(g.empty for g in self.inputs)

    def of(self, name: str) -> InputGuards:
        return next(g for g in self.inputs if g.name == name)

    def describe(self) -> list[str]:
        lines = [g.describe() for g in self.inputs if not g.empty]
        lines += ["equal sizes: " + " = ".join(f"{name} dim {dim}" for name, dim in group)
                  + " (AOTInductor's input checks)" for group in self.equal]
        return lines

    def record(self) -> dict[str, Any]:
        """build.json's `guards`: what verify's hostile phase, soak and check read."""
        return {"inputs": [{"name": g.name,
                            "values": [g.values.low, g.values.high, g.values.source] if g.values else None,
                            "finite": g.finite, "sizes": [[s.dim, s.low, s.high, s.what] for s in g.sizes]}
                           for g in self.inputs],
                "equal": [[[name, dim] for name, dim in group] for group in self.equal]}

    @classmethod
    def from_record(cls, data: Any) -> Guards | None:
        if not isinstance(data, dict) or not isinstance(data.get("inputs"), list):
            return None
        inputs = []
        for item in data["inputs"]:
            name = str(item["name"])
            values = item.get("values")
            inputs.append(InputGuards(
                name, ValueRange(float(values[0]), float(values[1]), str(values[2])) if values else None,
                bool(item.get("finite")), [SizeRange(int(d), int(lo), None if hi is None else int(hi), str(w))
                                           for d, lo, hi, w in item.get("sizes") or []]))
        return cls(inputs, [[(str(name), int(dim)) for name, dim in group] for group in data.get("equal") or []])


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


# -- what each input indexes ------------------------------------------------------------------------------------
def indexing_ranges(module: Any, binding: Binding, example: Tensors) -> dict[str, ValueRange]:
    """Config input -> the values it may take, for inputs whose values reach an op that indexes with them, found
    by running `module` once on `example`."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    aten = torch.ops.aten
    keeping = {aten.view, aten._unsafe_view, aten.reshape, aten.expand, aten.unsqueeze, aten.squeeze, aten.select,
               aten.slice, aten.clone, aten.contiguous, aten._to_copy, aten.to, aten.flatten, aten.permute, aten.t,
               aten.transpose, aten.detach, aten.alias, aten.lift_fresh, aten.lift_fresh_copy, aten.narrow,
               aten.unbind, aten.split, aten.split_with_sizes, aten.chunk, aten.repeat, aten.movedim,
               aten.expand_as, aten.view_as, aten.reshape_as, aten.squeeze_, aten.unsqueeze_, aten.cat}
    found: dict[str, ValueRange] = {}
    traced: dict[int, tuple[str, Any]] = {}

    def source(value: Any) -> str | None:
        if isinstance(value, (list, tuple)):
            names = {source(v) for v in value} - {None}
            return next(iter(names)) if len(names) == 1 else None
        entry = traced.get(id(value)) if isinstance(value, torch.Tensor) else None
        return entry[0] if entry is not None and entry[1]() is value else None

    def follow(name: str, value: Any) -> None:
        if isinstance(value, torch.Tensor):
            traced[id(value)] = (name, weakref.ref(value))
        elif isinstance(value, (list, tuple)):
            for item in value:
                follow(name, item)

    def indexes(name: str | None, low: int, high: int, what: str) -> None:
        if name is None:
            return
        earlier = found.get(name)
        if earlier is None or high - low < earlier.high - earlier.low:
            found[name] = ValueRange(low, high, what)

    class Follow(TorchDispatchMode):
        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            packet = func.overloadpacket
            if packet in keeping and args and source(args[0]) is not None:
                follow(str(source(args[0])), out)
            elif packet in (aten.embedding, aten.embedding_bag) and len(args) > 1:
                indexes(source(args[1]), 0, int(args[0].shape[0]), f"an embedding of {int(args[0].shape[0])} rows")
            elif packet in (aten.index_select, aten.gather) and len(args) > 2:
                size = int(args[0].shape[args[1]]) if args[0].dim() else 1
                indexes(source(args[2]), 0, size, f"{packet.__name__} over {size} entries")
            elif packet is aten.index and len(args) > 1:
                for position, index in enumerate(args[1]):
                    if isinstance(index, torch.Tensor) and index.dtype != torch.bool:
                        size = int(args[0].shape[position])
                        indexes(source(index), -size, size, f"indexing a dim of {size}")
            return out

    for name, tensor in example.items():
        if not tensor.is_floating_point() and tensor.dtype != torch.bool:
            follow(name, tensor)
    with torch.no_grad(), Follow():
        binding.call(module, example)
    return found


# -- the decision -----------------------------------------------------------------------------------------------
class GuardConflict(ValueError):
    """A declared range the model cannot honour (wider than the rows it indexes)."""

    def __init__(self, message: str, index: int) -> None:
        super().__init__(message)
        self.index = index  # of the input in the manifest


def value_guards(model: ModelSpec, derived: dict[str, ValueRange]) -> dict[str, ValueRange]:
    """Input name -> its value range: the manifest's `guard: {low, high}` (within the derived range), else the
    derived one; none for `guard: false`."""
    ranges: dict[str, ValueRange] = {}
    for index, spec in enumerate(model.inputs):
        setting = spec.guard
        if setting is False:
            continue
        found = derived.get(spec.name)
        declared = setting if setting is not None and setting is not True else None
        if declared is not None and (declared.low is not None or declared.high is not None):
            low = declared.low if declared.low is not None else (found.low if found else float("-inf"))
            high = declared.high if declared.high is not None else (found.high if found else float("inf"))
            if found is not None and (low < found.low or high > found.high):
                raise GuardConflict(f"input '{spec.name}': guard [{_number(low)}, {_number(high)}) is wider than "
                                    f"what the model takes: it indexes {found.source}, so values must lie in "
                                    f"{found.text()}", index)
            ranges[spec.name] = ValueRange(low, high, "the manifest's guard")
        elif found is not None:
            ranges[spec.name] = found
    return ranges


def refuses_nonfinite(spec: InputSpec) -> bool:
    """Float inputs refuse NaN and Inf unless the manifest says `guard: false` or `guard: {finite: false}`."""
    if not datatypes.lookup(spec.dtype).is_floating or spec.guard is False:
        return False
    return spec.guard is None or spec.guard is True or spec.guard.finite is not False


def derive(model: ModelSpec, module: Any, binding: Binding, example: Tensors,
           sizes: dict[str, list[SizeRange]] | None = None) -> Guards:
    """The guards of `model`'s export (raises GuardConflict for a declared range the model cannot honour)."""
    ranges = value_guards(model, indexing_ranges(module, binding, example))
    return Guards([InputGuards(spec.name, ranges.get(spec.name), refuses_nonfinite(spec), (sizes or {}).get(spec.name, []))
                   for spec in model.inputs])


# -- the guarded module -----------------------------------------------------------------------------------------
def _message(name: str, text: str) -> str:
    return f"{INVALID} input '{name}' {text}"


def value_message(name: str, values: ValueRange) -> str:
    return _message(name, f"holds a value outside {values.text()} ({values.source})")


def finite_message(name: str) -> str:
    return _message(name, "holds NaN or Inf (refused: `guard: {finite: false}` in the manifest serves them)")


def size_message(name: str, size: SizeRange, low: bool) -> str:
    bound = f"at least {size.low}" if low else f"at most {size.high}"
    return _message(name, f"{size.what}: its size must be {bound}")


def _export_check(guards: InputGuards) -> Any:
    """A check of one input for torch.export: torch ops that the package runs before the model."""
    import torch

    def check(value: Any) -> Any:
        for size in guards.sizes:
            current = value.shape[size.dim]
            if isinstance(current, int):
                continue  # a static dim: the package's own input checks hold it
            count = torch.scalar_tensor(current, dtype=torch.int64)
            torch._assert_async(count >= size.low, size_message(guards.name, size, True))
            if size.high is not None:
                torch._assert_async(count <= size.high, size_message(guards.name, size, False))
        if guards.values is not None:
            low, high = guards.values.low, guards.values.high
            valid = (value >= low) & (value < high)
            torch._assert_async(valid.all(), value_message(guards.name, guards.values))
            fill = low if low > float("-inf") else high - 1
            value = torch.where(valid, value, torch.full_like(value, fill if value.is_floating_point() else int(fill)))
        if guards.finite:
            torch._assert_async(torch.isfinite(value).all(), finite_message(guards.name))
        return value

    return check


@functools.cache
def _script_checks() -> tuple[Any, Any, Any]:
    """The checks, scripted once per process (torch.jit.script's deprecation is said once per build, by the build)."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)
        return _scripted()


def _scripted() -> tuple[Any, Any, Any]:
    import torch

    @torch.jit.script
    def check_values(value: torch.Tensor, low: float, high: float, message: str) -> torch.Tensor:
        if bool(((value < low) | (value >= high)).any()):
            raise RuntimeError(message)
        return value

    @torch.jit.script
    def check_finite(value: torch.Tensor, message: str) -> torch.Tensor:
        if not bool(torch.isfinite(value).all()):
            raise RuntimeError(message)
        return value

    @torch.jit.script
    def check_size(value: torch.Tensor, dim: int, low: int, message: str) -> torch.Tensor:
        if value.size(dim) < low:
            raise RuntimeError(message)
        return value

    return check_values, check_finite, check_size


def _script_check(guards: InputGuards) -> Any:
    """A check of one input for TorchScript: calls of scripted functions, which a trace keeps with their control
    flow (a traced `if` would be frozen at the example)."""
    check_values, check_finite, check_size = _script_checks()

    def check(value: Any) -> Any:
        for size in guards.sizes:
            value = check_size(value, size.dim, size.low, size_message(guards.name, size, True))
        if guards.values is not None:
            value = check_values(value, guards.values.low, guards.values.high,
                                 value_message(guards.name, guards.values))
        if guards.finite:
            value = check_finite(value, finite_message(guards.name))
        return value

    return check


def checks_for(guards: Guards, flavour: str) -> dict[str, Any]:
    """Config input name -> a function that checks (and, for export, clamps) its tensor; `flavour` is "aoti" or
    "torchscript"."""
    make = _export_check if flavour == "aoti" else _script_check
    return {g.name: make(g) for g in guards.inputs if not g.empty}
