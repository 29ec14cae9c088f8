"""torch.export + AOTInductor: the `.pt2` package that Triton's torch_aoti platform loads (26.03 on).

The manifest's dims become dynamic dims of torch.export: the batch dim a `Dim` (1..max_batch_size), every -1 dim
`Dim.AUTO`, so that torch itself finds which dims must stay equal (input_ids and attention_mask), which are free
(an image's height and width) and the range the model allows (512 positions). The package is compiled with this
machine's torch, loaded back with `torch._inductor.aoti_load_package`, and proved like a trace against eager
PyTorch by exporter.py, varying each group of dims that torch found as one. Inputs bind as the backend binds them (pt2_names.py):
INPUT__<n> and ARGS[<i>] by position, KWARGS[<name>] by keyword.

    binding = bind(model, module)
    package = compile_package(model, module, binding, example, progress, guards)  # Package(path, loaded, ...)
"""

from __future__ import annotations

import contextlib
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compiler.backend.pytorch import pt2_names
from compiler.datatypes import Tensors
from compiler.errors import ExportError, Problem
from compiler.export.binding import Binding
from compiler.export.examples import Axis
from compiler.export.guards import Guards, InputGuards, SizeRange, checks_for
from compiler.export.messages import captured_stderr, describe, full_text
from compiler.export.proof import UnservableOutput
from compiler.manifest.schema import ModelSpec
from compiler.repository import layout

#: The inductor options an optimised package is compiled with (optimize: true, the default), and with
#: `optimize: max-autotune`. freezing: weights become constants that inductor folds and prepacks (oneDNN on CPU);
#: measured here on batch 16: MiniLM 30.8 -> 14.3 ms, ResNet-50 408 -> 341 ms (eager 40.4 and 567); channels_last on
#: top gained nothing, as freezing already picks the convolutions' layout. max_autotune on top (CPU: C++ GEMM
#: templates against ATen, benchmarked at the example's shapes), measured side by side, interleaved, on 2026-11-25:
#: MiniLM batch 1 4.24 -> 3.51 ms but batch 16 30.9 -> 34.5 ms; ResNet-50 batch 1 37.4 -> 43.2 ms, batch 16
#: 388 -> 528 ms; compile 14 -> 32 s and 18 -> 57 s. It is no default: a model served at batch 1 may opt in.
INDUCTOR_OPTIONS: dict[str, Any] = {"freezing": True}
MAX_AUTOTUNE_OPTIONS: dict[str, Any] = {**INDUCTOR_OPTIONS, "max_autotune": True}
#: With AOTI_RUNTIME_CHECK_INPUTS=1 the package checks each input's sizes against the ranges of its dims, lower
#: bounds included (torch/_inductor/config.py, aot_inductor.check_lowerbound), each input on its own. That is the
#: one check of every input's real size: the compiled code reads a group of equal dims from its first input, and
#: checks the others with assert_size_stride, which skips an empty tensor (aoti_runtime/utils.h: `if (numel == 0)
#: return;`), so an input left empty beside a full one was read past its end; inside tritonserver (NVIDIA's backend
#: runs the package there) that ended the server. Inductor's ranges start every dynamic dim at 2 (torch specialises
#: 0 and 1), so the compile writes the lower bound checks from 1 (at_least_one): a size-1 request passes, an empty
#: dim is refused on every input, and the guards (guards.py) hold the model's own minimum, with their words.
RUNTIME_CHECK_OPTIONS: dict[str, Any] = {"aot_inductor.check_lowerbound": True}


@contextlib.contextmanager
def at_least_one() -> Iterator[None]:
    """While AOTInductor writes its input checks (CppWrapperCpu.generate_input_output_runtime_checks, which reads each
    dim's range with torch.utils._sympy.value_ranges.bound_sympy), every lower bound it sees is 1; nothing else of
    the compile reads the change. A torch without that method is refused: its packages would let an empty dim through."""
    from torch._inductor.codegen import cpp_wrapper_cpu
    from torch.utils._sympy import value_ranges

    writer = getattr(cpp_wrapper_cpu.CppWrapperCpu, "generate_input_output_runtime_checks", None)
    if writer is None:
        raise RuntimeError("this torch's AOTInductor has no generate_input_output_runtime_checks; its packages' "
                           "input checks cannot be made to refuse an empty dim")
    exact = value_ranges.bound_sympy

    def from_one(expr: Any, ranges: Any = None) -> Any:
        found = exact(expr, ranges)
        return value_ranges.ValueRanges(min(found.lower, 1), found.upper)

    def checks(self: Any) -> Any:
        value_ranges.bound_sympy = from_one
        try:
            return writer(self)
        finally:
            value_ranges.bound_sympy = exact

    cpp_wrapper_cpu.CppWrapperCpu.generate_input_output_runtime_checks = checks  # type: ignore[method-assign]
    try:
        yield
    finally:
        cpp_wrapper_cpu.CppWrapperCpu.generate_input_output_runtime_checks = writer  # type: ignore[method-assign]
RUNTIME_CHECKS_ENV = pt2_names.RUNTIME_CHECKS_ENV


def enable_runtime_checks() -> None:
    """Packages run in this process check their inputs (before the first package runs; a later call is too late)."""
    import os

    os.environ.setdefault(RUNTIME_CHECKS_ENV, "1")


def inductor_options(model: ModelSpec) -> dict[str, Any]:
    """The inductor configs `optimize` asks for: a fresh dict, as aoti_compile_and_package adds its own keys to the
    one it is given ("aot_inductor.package")."""
    if model.optimize == "max-autotune":
        return dict(MAX_AUTOTUNE_OPTIONS)
    return dict(INDUCTOR_OPTIONS) if model.optimize else {}


def optimized_as(model: ModelSpec) -> str:
    """What build.json records as applied."""
    return " + ".join(f"inductor {key}" for key in inductor_options(model))


def dynamic_shapes(model: ModelSpec, binding: Binding) -> dict[str, Any]:
    """{forward() argument: {dim index: Dim}}: our batch Dim, and Dim.AUTO for every -1 dim."""
    from torch.export import Dim

    batch = Dim("batch", min=1, max=model.max_batch_size) if model.max_batch_size >= 2 else None
    offset = 1 if model.max_batch_size > 0 else 0
    shapes: dict[str, Any] = {}
    for name, argument in binding.table():
        spec = next(s for s in model.inputs if s.name == name)
        dims: dict[int, Any] = {0: batch} if batch is not None else {}
        for index, want in enumerate(spec.dims):
            if want == -1:
                dims[index + offset] = Dim.AUTO(min=1)
        shapes[argument] = dims or None
    return shapes


@dataclass
class DimGroups:
    """What torch.export found for the -1 dims: the groups that must stay equal, and each group's range."""

    groups: list[list[Axis]]
    ranges: list[tuple[int, int | None]]  # (min, max or None) per group
    fixed: list[tuple[Axis, int]]  # -1 dims the model fixes to one size

    def limits(self) -> list[str]:
        said = []
        for axes, (low, high) in zip(self.groups, self.ranges):
            names = ", ".join(a.describe() for a in axes)
            if high is not None:
                said.append(f"{names} takes at most {high}")
            if low > 2:  # torch.export starts every dynamic dim at 2 (0/1 specialisation)
                said.append(f"{names} takes at least {low}")
        return said


def call_order(binding: Binding) -> list[str]:
    """Config input names in the package's call order (its flat inputs: positional, then keyword), as split()
    orders them."""
    positional = [name for name in binding.order if name not in binding.keywords]
    return positional + [name for name in binding.order if name in binding.keywords]


def found_dims(model: ModelSpec, binding: Binding, exported: Any) -> DimGroups:
    """The symbols torch.export gave the -1 dims of each user input (in call order: positional, then keyword)."""
    from torch.export.graph_signature import InputKind

    called = call_order(binding)
    users = [s.arg.name for s in exported.graph_signature.input_specs if s.kind == InputKind.USER_INPUT]
    nodes = {n.name: n for n in exported.graph.nodes if n.op == "placeholder"}
    offset = 1 if model.max_batch_size > 0 else 0
    by_symbol: dict[str, list[Axis]] = {}
    fixed: list[tuple[Axis, int]] = []
    for name, user in zip(called, users):
        spec = next(s for s in model.inputs if s.name == name)
        shape = nodes[user].meta["val"].shape
        for index, want in enumerate(spec.dims):
            if want != -1:
                continue
            size = shape[index + offset]
            if isinstance(size, int) or size.node.expr.is_number:  # a SymInt torch.export made a constant
                fixed.append((Axis(name, index), int(size)))
            else:
                by_symbol.setdefault(str(size.node.expr), []).append(Axis(name, index))
    ranges = []
    bounds = {str(symbol): value for symbol, value in exported.range_constraints.items()}
    for symbol in by_symbol:
        value = bounds.get(symbol)
        low = int(value.lower) if value is not None else 2
        upper = value.upper if value is not None else None
        ranges.append((low, _finite(upper)))
    return DimGroups(list(by_symbol.values()), ranges, fixed)


def _finite(bound: Any) -> int | None:
    """A range's upper bound as an int, or None for torch's int_oo (which int() cannot convert)."""
    try:
        value = int(bound)
    except (TypeError, ValueError, AttributeError, OverflowError):
        return None
    return value if value < 2**31 else None


def flatten_pt2(result: Any) -> list[Any]:
    """The tensors of a result in the order the package's call spec flattens them (tuple, list, dict only)."""
    import torch
    from torch.utils import _pytree

    leaves, _ = _pytree.tree_flatten(result)
    for leaf in leaves:
        if not isinstance(leaf, torch.Tensor):
            raise UnservableOutput(f"an output is {type(leaf).__name__}; a PT2 package returns Tensors only")
    return list(leaves)


def result_names(result: Any) -> list[str]:
    """The backend's names of a result's tensors, in flattening order: RESULT, RESULT[0], RESULT[logits]."""
    from torch.utils import _pytree

    paths, _ = _pytree.tree_flatten_with_path(result)
    steps = ["".join(f"[{getattr(k, 'idx', getattr(k, 'key', k))}]" for k in path) for path, _leaf in paths]
    return pt2_names.result_names([step for step in steps if step])  # a lone tensor's one path is empty


def output_positions(result: Any) -> dict[str, int]:
    """Output name -> position among the result's tensors, for every name the backend accepts."""
    return pt2_names.positions(result_names(result), "OUTPUT")


@dataclass
class Package:
    path: Path  # the compiled .pt2, in a temporary folder until saved
    loaded: Any  # torch._inductor.aoti_load_package(path)
    call_spec: pt2_names.CallSpec
    folder: Any  # the TemporaryDirectory holding it
    limits: list[str]  # ranges the model itself imposes on variable dims (torch.export's range constraints)
    groups: list[list[Axis]]  # the -1 dims torch.export found must stay equal, one list per free size
    minimums: list[int]  # the smallest size of each group, as the guards check it
    guards: Guards  # what the package refuses (compiled in front of the model)

    def save(self, target: Path) -> None:
        import shutil

        shutil.copyfile(self.path, target)


def _export(model: ModelSpec, module: Any, binding: Binding, example: Tensors) -> Any:
    import torch

    args, kwargs = binding.split(example)
    try:
        with captured_stderr() as said:  # torch logs the FX graph of a failed export: kept for the log file
            return torch.export.export(module, tuple(args), kwargs, dynamic_shapes=dynamic_shapes(model, binding),
                                       strict=False)
    except Exception as err:
        raise ExportError(Problem(
            f"torch.export failed: {describe(err)}", model=model.name, field="export",
            details="\n".join(said) + "\n" + full_text(err), hint=export_hint(err))) from None


#: What the export of a model with no direct torch.export path says, by the error torch raised.
_TORCHSCRIPT = "or use `export: trace` (or `script`) for a release that serves TorchScript"


def export_hint(err: BaseException) -> str:
    text = f"{type(err).__name__}: {err}"
    if "__obj_flatten__" in text or "torch.classes" in text:
        return ("the model holds TorchScript objects (torch.classes.*, such as dynamic quantization's packed "
                "weights), which torch.export cannot trace: quantize with PT2E (torch.ao.quantization.quantize_pt2e) "
                f"instead, {_TORCHSCRIPT}")
    if "DataDependent" in text or "data-dependent" in text:
        return f"a branch or a size that depends on input values cannot be captured: rewrite it with torch.cond, {_TORCHSCRIPT}"
    return f"the full text names the line torch.export stopped at; {_TORCHSCRIPT}"


_CHECKED_BOUND = re.compile(r'input_handles\[(\d+)\]: dim value is too large at (\d+), "\s*<<\s*"expected to be <= (\d+)')


def checked_bounds(path: Path) -> dict[tuple[int, int], int]:
    """(flat input position, tensor dim) -> the largest size the compiled package's input checks accept. Code
    generation can assume more than torch.export's ranges say (a sum over at most 4096 elements, accumulated
    without chunks, bounds its dim at 4096), so the package's own checks are read from its wrapper source."""
    import zipfile

    bounds: dict[tuple[int, int], int] = {}
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            if name.endswith(".wrapper.cpp"):
                text = archive.read(name).decode("utf-8", "replace")
                for position, dim, bound in _CHECKED_BOUND.findall(text):
                    key = (int(position), int(dim))
                    bounds[key] = min(int(bound), bounds.get(key, int(bound)))
    return bounds


def tightened(model: ModelSpec, binding: Binding, guards: Guards, bounds: dict[tuple[int, int], int],
              progress: Any) -> tuple[Guards, list[str]]:
    """`guards` with each size's upper bound lowered to what the package checks, and what that adds to say."""
    position = {name: index for index, name in enumerate(call_order(binding))}
    said = []
    inputs = []
    for guard in guards.inputs:
        sizes = []
        for size in guard.sizes:
            bound = bounds.get((position[guard.name], size.dim))
            if bound is not None and (size.high is None or bound < size.high):
                said.append(f"{guard.name} {size.what} takes at most {bound} (AOTInductor's code assumes it)")
                size = SizeRange(size.dim, size.low, bound, size.what)
            sizes.append(size)
        inputs.append(InputGuards(guard.name, guard.values, guard.finite, sizes))
    if said:
        progress("the package's own input checks are tighter: " + "; ".join(said))
    batches = [s.high for g in inputs for s in g.sizes if s.what == "batch dim" and s.high is not None]
    if batches and min(batches) < model.largest_batch:
        raise ExportError(Problem(
            f"the package takes batches of at most {min(batches)}, but Triton would send it up to "
            f"{model.largest_batch} (max_batch_size): AOTInductor's code generation assumed the smaller batches (for "
            "a convolution, torch picks another backend from batch 16 on, with another memory layout)",
            model=model.name, field="max_batch_size",
            hint=f"set max_batch_size (and any variant's) to {min(batches)} or less"))
    return Guards(inputs, guards.equal), said


#: How far the build looks for a length the model cannot take, where torch.export found no bound (sizes double).
PROBE_LIMIT = 4096


def probed_bounds(model: ModelSpec, module: Any, binding: Binding, dims: DimGroups) -> list[str]:
    """For each group of -1 dims that holds an integer input (token ids) and has no upper bound in torch.export's
    ranges, the largest size eager PyTorch takes (a GPT-2 indexes its 64 position embeddings with arange(length),
    which no range sees): doubling from the example up to PROBE_LIMIT, then halving the gap. Sets the bound in
    `dims.ranges`; returns what to say."""
    import torch

    from compiler import datatypes
    from compiler.export.examples import Plan, make_inputs, plans_for, resized

    base = plans_for(model)[0]
    single = Plan("probe", 1 if model.max_batch_size > 0 else None, base.sizes, seed=40)
    kinds = {spec.name: datatypes.lookup(spec.dtype) for spec in model.inputs}
    said = []

    def runs(axes: list[Axis], size: int) -> str | None:
        try:
            with torch.no_grad():
                binding.call(module, make_inputs(model, resized(single, axes, size, "probe")))
        except Exception as err:
            return describe(err)
        return None

    for number, (axes, (low, high)) in enumerate(zip(dims.groups, dims.ranges)):
        if high is not None or not any(kinds[a.input].is_integer for a in axes):
            continue
        good = base.sizes[axes[0].input][axes[0].dim]
        bad, why = None, None
        size = good * 2
        while size <= PROBE_LIMIT:
            why = runs(axes, size)
            if why is not None:
                bad = size
                break
            good, size = size, size * 2
        if bad is None:
            continue
        while bad - good > 1:
            middle = (good + bad) // 2
            failed = runs(axes, middle)
            good, bad, why = (middle, bad, why) if failed is None else (good, middle, failed)
        dims.ranges[number] = (low, good)
        said.append(f"{', '.join(a.describe() for a in axes)} takes at most {good} (eager PyTorch fails at {bad}: "
                    f"{why})")
    return said


def _input_index(model: ModelSpec, name: str) -> int:
    return next(index for index, spec in enumerate(model.inputs) if spec.name == name)


def smallest_sizes(model: ModelSpec, module: Any, binding: Binding, dims: DimGroups) -> list[int]:
    """The smallest size each group of -1 dims takes: torch.export's lower bound where the model sets one (above
    the 2 it starts every dynamic dim at, as it specialises 0 and 1), else 1 where eager PyTorch runs at 1, else 2."""
    import torch

    from compiler.export.examples import make_inputs, plans_for, resized

    base = plans_for(model)[0]
    smallest = []
    for axes, (low, _high) in zip(dims.groups, dims.ranges):
        if low > 2:
            smallest.append(low)
            continue
        try:
            with torch.no_grad():
                binding.call(module, make_inputs(model, resized(base, axes, 1, "size 1")))
            smallest.append(1)
        except Exception:
            smallest.append(2)
    return smallest


def size_guards(model: ModelSpec, dims: DimGroups, smallest: list[int]) -> dict[str, list[SizeRange]]:
    """Input name -> the sizes its request tensor may have: the batch dim 1..max_batch_size, each -1 dim from its
    smallest size to the bound torch.export found."""
    offset = 1 if model.max_batch_size > 0 else 0
    sizes: dict[str, list[SizeRange]] = {spec.name: [] for spec in model.inputs}
    if model.max_batch_size >= 2:
        for spec in model.inputs:
            sizes[spec.name].append(SizeRange(0, 1, model.max_batch_size, "batch dim"))
    for axes, (_low, high), least in zip(dims.groups, dims.ranges, smallest):
        for axis in axes:
            sizes[axis.input].append(SizeRange(axis.dim + offset, least, high, f"dim {axis.dim}"))
    for ranges in sizes.values():
        ranges.sort(key=lambda s: s.dim)
    return sizes


def compile_package(model: ModelSpec, module: Any, binding: Binding, example: Tensors,
                    progress: Any, guards: Guards) -> Package:
    """torch.export the model as it is (to learn its dims), then again behind its guards, and compile that."""
    import torch

    from compiler.export.adapt import wrap

    progress("torch.export with " + binding.describe())
    exported = _export(model, module, binding, example)
    dims = found_dims(model, binding, exported)
    if dims.fixed:
        raise ExportError([Problem(
            f"{axis.describe()} is declared -1, but torch.export fixed it to {size}: the model's code turns this "
            "size into a constant (an LSTM unrolled over the sequence, a view to a size read from the input)",
            model=model.name, field=f"inputs[{_input_index(model, axis.input)}].dims",
            hint=f"declare {size} in dims (the package then takes that size only); to serve every size, compute the "
                 "size with tensor ops, or use `export: script` for a release that serves TorchScript")
            for axis, size in dims.fixed])
    limits = dims.limits() + probed_bounds(model, module, binding, dims)
    if limits:
        progress("the variable dims are bounded: " + "; ".join(limits))
    if any(len(axes) > 1 for axes in dims.groups):
        progress("dims that must stay equal: " + "; ".join(" = ".join(a.describe() for a in axes)
                                                        for axes in dims.groups if len(axes) > 1))
    enable_runtime_checks()  # the proof runs the package as it is served
    smallest = smallest_sizes(model, module, binding, dims)
    sizes = size_guards(model, dims, smallest)
    guards = Guards([InputGuards(g.name, g.values, g.finite, sizes[g.name]) for g in guards.inputs],
                    [[(a.input, a.dim) for a in axes] for axes in dims.groups if len(axes) > 1])
    checks = checks_for(guards, "aoti")
    if checks:
        progress("torch.export behind the guards: " + "; ".join(guards.describe()))
        exported = _export(model, wrap(module, binding, checks=checks), binding, example)
    folder = tempfile.TemporaryDirectory(prefix="aoti-")
    path = Path(folder.name) / layout.AOTI_FILENAME
    options = inductor_options(model)
    progress("AOTInductor compile (a C++ build; tens of seconds)" + (f", {options}" if options else ""))
    try:
        with at_least_one():
            torch._inductor.aoti_compile_and_package(exported, package_path=str(path),
                                                     inductor_configs={**options, **RUNTIME_CHECK_OPTIONS})
        loaded = torch._inductor.aoti_load_package(str(path))
    except Exception as err:
        folder.cleanup()
        raise ExportError(Problem(f"AOTInductor could not compile the exported program: {describe(err)}",
                                  model=model.name, field="export", details=full_text(err))) from None
    spec_in, spec_out = loaded.loader.get_call_spec()
    guards, tighter = tightened(model, binding, guards, checked_bounds(path), progress)
    return Package(path, loaded, pt2_names.CallSpec.parse(spec_in, spec_out), folder, limits + tighter, dims.groups,
                   smallest, guards)


def check_names(model: ModelSpec, names: pt2_names.CallSpec, declared_outputs: list[str]) -> None:
    """Every config name must be one the backend gives this package."""
    problems = []
    for spec in model.inputs:
        if spec.name not in names.inputs:
            problems.append(f"input '{spec.name}' is not in the package's call spec ({', '.join(names.forward_inputs)})")
    for name in declared_outputs:
        if name not in names.outputs:
            problems.append(f"output '{name}' is not in the package's call spec ({', '.join(names.forward_outputs)})")
    if problems:
        raise ExportError([Problem(p, model=model.name, field="outputs" if "output" in p else "inputs",
                                   hint="the backend names tensors after the call spec; see the names listed")
                           for p in problems])
