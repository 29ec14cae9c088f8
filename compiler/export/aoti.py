"""torch.export + AOTInductor: the `.pt2` package that Triton's torch_aoti platform loads (26.03 on).

The manifest's dims become dynamic dims of torch.export: the batch dim a `Dim` (1..max_batch_size), every -1 dim
`Dim.AUTO`, so that torch itself finds which dims must stay equal (input_ids and attention_mask), which are free
(an image's height and width) and the range the model allows (512 positions). The package is compiled with this
machine's torch, loaded back with `torch._inductor.aoti_load_package`, and proved like a trace against eager
PyTorch by exporter.py, varying each group of dims that torch found as one. Inputs bind as the backend binds them (pt2_names.py):
INPUT__<n> and ARGS[<i>] by position, KWARGS[<name>] by keyword.

    binding = bind_aoti(model, module)
    package = compile_package(model, module, binding, example, progress)  # Package(path, loaded, groups, ...)
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compiler.backend.pytorch import pt2_names
from compiler.errors import ExportError, Problem
from compiler.export.binding import PT2_CALL_SPEC, Binding, check_unbound, forward_parameters
from compiler.export.examples import Axis
from compiler.export.messages import describe, full_text
from compiler.export.proof import UnservableOutput
from compiler.manifest.schema import ModelSpec
from compiler.repository import layout


def _fail(model: ModelSpec, message: str, hint: str | None = None, field: str = "inputs") -> ExportError:
    return ExportError(Problem(message, model=model.name, field=field, hint=hint))


def bind_aoti(model: ModelSpec, module: Any) -> Binding:
    """Manifest names -> forward() parameters, as the torch_aoti backend binds them."""
    params = forward_parameters(module)
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    keywordable = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    signature = f"forward({', '.join(p.name for p in params)})"
    by_position: dict[int, str] = {}
    by_keyword: dict[str, str] = {}
    for spec in model.inputs:
        target = pt2_names.input_argument(spec.name)
        if target is None:
            raise _fail(model, f"input '{spec.name}' names no forward() argument", "use INPUT__<n>, ARGS[<i>] or "
                        "KWARGS[<name>]")
        kind, value = target
        if kind == "position":
            by_position[int(value)] = spec.name
        elif str(value) not in keywordable:
            raise _fail(model, f"input '{spec.name}': {signature} has no argument '{value}' to pass by keyword",
                        f"name one of {', '.join(sorted(keywordable))}")
        else:
            by_keyword[str(value)] = spec.name
    if sorted(by_position) != list(range(len(by_position))):
        raise _fail(model, f"positional inputs must number 0..{len(by_position) - 1} once each, got "
                    f"{sorted(by_position)}", "the n-th positional input is forward()'s n-th argument")
    if len(by_position) > len(positional):
        raise _fail(model, f"{len(by_position)} positional inputs, but {signature} takes {len(positional)}")
    if by_keyword and any(name.startswith("INPUT__") for name in by_position.values()):
        raise _fail(model, "INPUT__<n> counts every tensor of the call spec, keyword ones included: mixed with "
                    "KWARGS[...] it is ambiguous", "use ARGS[<i>] beside KWARGS[<name>]")
    taken = {positional[i].name for i in by_position}
    clash = sorted(taken & set(by_keyword))
    if clash:
        raise _fail(model, f"forward() argument(s) {clash} bound twice, by position and by keyword")
    check_unbound(model, params, taken | set(by_keyword), signature)
    order = [by_position[i] for i in sorted(by_position)] + list(by_keyword.values())
    arguments = [positional[i].name for i in sorted(by_position)] + list(by_keyword)
    return Binding(PT2_CALL_SPEC, order, arguments, keywords=tuple(by_keyword.values()))


#: The inductor options an optimised package is compiled with (optimize: true, the default), and with
#: `optimize: max-autotune`. freezing: weights become constants that inductor folds and prepacks (oneDNN on CPU);
#: measured here on batch 16: MiniLM 30.8 -> 14.3 ms, ResNet-50 408 -> 341 ms (eager 40.4 and 567); channels_last on
#: top gained nothing, as freezing already picks the convolutions' layout. max_autotune on top (CPU: C++ GEMM
#: templates against ATen, benchmarked at the example's shapes), measured side by side, interleaved, on 2026-11-25:
#: MiniLM batch 1 4.24 -> 3.51 ms but batch 16 30.9 -> 34.5 ms; ResNet-50 batch 1 37.4 -> 43.2 ms, batch 16
#: 388 -> 528 ms; compile 14 -> 32 s and 18 -> 57 s. It is no default: a model served at batch 1 may opt in.
INDUCTOR_OPTIONS: dict[str, Any] = {"freezing": True}
MAX_AUTOTUNE_OPTIONS: dict[str, Any] = {**INDUCTOR_OPTIONS, "max_autotune": True}


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


def found_dims(model: ModelSpec, binding: Binding, exported: Any) -> DimGroups:
    """The symbols torch.export gave the -1 dims of each user input (in call order: positional, then keyword)."""
    from torch.export.graph_signature import InputKind

    positional = [name for name in binding.order if name not in binding.keywords]
    called = positional + [name for name in binding.order if name in binding.keywords]  # as split() orders them
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
            if isinstance(size, int):
                fixed.append((Axis(name, index), size))
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
    names = []
    for path, _leaf in paths:
        steps = "".join(f"[{getattr(k, 'idx', getattr(k, 'key', k))}]" for k in path)
        names.append("RESULT" + steps)
    return names


def output_positions(result: Any) -> dict[str, int]:
    """Output name -> position among the result's tensors, for every name the backend accepts."""
    names = result_names(result)
    return {name: i for i, name in enumerate(names)} | {f"OUTPUT__{i}": i for i in range(len(names))}


@dataclass
class Package:
    path: Path  # the compiled .pt2, in a temporary folder until saved
    loaded: Any  # torch._inductor.aoti_load_package(path)
    call_spec: pt2_names.CallSpec
    folder: Any  # the TemporaryDirectory holding it
    limits: list[str]  # ranges the model itself imposes on variable dims (torch.export's range constraints)
    groups: list[list[Axis]]  # the -1 dims torch.export found must stay equal, one list per free size

    def save(self, target: Path) -> None:
        import shutil

        shutil.copyfile(self.path, target)


def compile_package(model: ModelSpec, module: Any, binding: Binding, example: dict[str, Any],
                    progress: Any) -> Package:
    import torch

    args, kwargs = binding.split(example)
    progress("torch.export with " + binding.describe())
    try:
        exported = torch.export.export(module, tuple(args), kwargs, dynamic_shapes=dynamic_shapes(model, binding),
                                       strict=False)
    except Exception as err:
        raise ExportError(Problem(
            f"torch.export failed: {describe(err)}", model=model.name, field="export", details=full_text(err),
            hint="a branch on input values cannot be captured: rewrite it with torch.cond, or use `export: script` "
                 "for a release that serves TorchScript"
        )) from None
    dims = found_dims(model, binding, exported)
    if dims.fixed:
        raise ExportError([Problem(
            f"{axis.describe()} is declared -1, but the model fixes it to {size} (torch.export specialised it)",
            model=model.name, field="inputs", hint=f"declare {size} in dims, or make the model take any size")
            for axis, size in dims.fixed])
    limits = dims.limits()
    if limits:
        progress("the variable dims are bounded: " + "; ".join(limits))
    if any(len(axes) > 1 for axes in dims.groups):
        progress("dims that must stay equal: " + "; ".join(" = ".join(a.describe() for a in axes)
                                                        for axes in dims.groups if len(axes) > 1))
    folder = tempfile.TemporaryDirectory(prefix="aoti-")
    path = Path(folder.name) / layout.AOTI_FILENAME
    options = inductor_options(model)
    progress("AOTInductor compile (a C++ build; tens of seconds)" + (f", {options}" if options else ""))
    try:
        torch._inductor.aoti_compile_and_package(exported, package_path=str(path), inductor_configs=options)
        loaded = torch._inductor.aoti_load_package(str(path))
    except Exception as err:
        folder.cleanup()
        raise ExportError(Problem(f"AOTInductor could not compile the exported program: {describe(err)}",
                                  model=model.name, field="export", details=full_text(err))) from None
    spec_in, spec_out = loaded.loader.get_call_spec()
    return Package(path, loaded, pt2_names.CallSpec.parse(spec_in, spec_out), folder, limits, dims.groups)


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
