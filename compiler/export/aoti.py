"""torch.export + AOTInductor: the `.pt2` package that Triton's torch_aoti platform loads (26.03 on).

The manifest's dims become `torch.export.Dim`s: the batch dim (1..max_batch_size) and one Dim for each group of
-1 dims that share an example size (so input_ids and attention_mask stay equal). The package is compiled with
this machine's torch, loaded back with `torch._inductor.aoti_load_package`, and proved like a trace: its answers
are compared with eager PyTorch by exporter.py. Inputs bind as the backend binds them (pt2_names.py):
INPUT__<n> and ARGS[<i>] by position, KWARGS[<name>] by keyword.

    binding = bind_aoti(model, module)
    package = compile_package(model, module, binding, example, plan, progress)  # Package(path, loaded, ...)
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compiler.backend.pytorch import pt2_names
from compiler.errors import ExportError, Problem
from compiler.export.binding import PT2_CALL_SPEC, Binding, check_unbound, forward_parameters
from compiler.export.examples import Plan
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


def _smallest(model: ModelSpec) -> dict[int, int]:
    """Example size of each variable-dim group -> the smallest size the proof runs it at."""
    from compiler.export.examples import plans_for

    smallest: dict[int, int] = {}
    plans = plans_for(model)
    for spec in model.inputs:
        for index, want in enumerate(spec.dims):
            if want == -1:
                base = plans[0].sizes[spec.name][index]
                sizes = [p.sizes[spec.name][index] for p in plans]
                smallest[base] = min(sizes + [smallest.get(base, base)])
    return smallest


def dynamic_shapes(model: ModelSpec, binding: Binding, plan: Plan, low: dict[int, int] | None = None) -> dict[str, Any]:
    """{forward() argument: {dim index: Dim}}: the batch dim and the -1 dims (one Dim per group that shares an
    example size, as the proof varies them together)."""
    from torch.export import Dim

    batch = Dim("batch", min=1, max=model.max_batch_size) if model.max_batch_size >= 2 else None
    groups: dict[int, Any] = {}
    shapes: dict[str, Any] = {}
    for name, argument in binding.table():
        spec = next(s for s in model.inputs if s.name == name)
        dims: dict[int, Any] = {}
        offset = 1 if model.max_batch_size > 0 else 0
        if batch is not None:
            dims[0] = batch
        for index, want in enumerate(spec.dims):
            if want == -1:
                size = plan.sizes[name][index]
                dims[index + offset] = groups.setdefault(size, Dim(f"size_{size}", min=(low or {}).get(size, 1)))
        shapes[argument] = dims or None
    return shapes


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
    limits: list[str]  # ranges the model itself imposes on variable dims (torch.export's suggested fixes)

    def save(self, target: Path) -> None:
        import shutil

        shutil.copyfile(self.path, target)


def compile_package(model: ModelSpec, module: Any, binding: Binding, example: dict[str, Any], plan: Plan,
                    progress: Any) -> Package:
    import torch

    args, kwargs = binding.split(example)
    shapes = dynamic_shapes(model, binding, plan)
    progress("torch.export with " + binding.describe())
    limits: list[str] = []
    try:
        try:
            exported = torch.export.export(module, tuple(args), kwargs, dynamic_shapes=shapes, strict=False)
        except torch._dynamo.exc.UserError as err:
            if "Constraints violated" not in str(err):
                raise
            if "Suggested fixes" in str(err):
                # The model bounds a variable dim itself (position embeddings: 512 tokens): torch's own ranges.
                from torch.export.dynamic_shapes import refine_dynamic_shapes_from_suggested_fixes

                head, _, fixes = str(err).partition("Suggested fixes:")
                block = fixes.strip().split("\n\n")[0]  # torch appends a paragraph its own parser does not expect
                shapes = dict(refine_dynamic_shapes_from_suggested_fixes(f"{head}Suggested fixes:\n  {block}", shapes))
            else:
                # Guards torch cannot turn into a range (a CNN's feature maps must not shrink to 1 pixel): start
                # each variable dim at the smallest size the proof runs, and prove from there up.
                shapes = dynamic_shapes(model, binding, plan, low=_smallest(model))
            limits = _ranges(model, binding, shapes)
            progress("the variable dims are bounded: " + "; ".join(limits))
            exported = torch.export.export(module, tuple(args), kwargs, dynamic_shapes=shapes, strict=False)
    except Exception as err:
        raise ExportError(Problem(
            f"torch.export failed: {describe(err)}", model=model.name, field="export", details=full_text(err),
            hint="a branch on input values cannot be captured: rewrite it with torch.cond, or use `export: script` "
                 "for a release that serves TorchScript; a size that must stay fixed should not be declared -1"
        )) from None
    folder = tempfile.TemporaryDirectory(prefix="aoti-")
    path = Path(folder.name) / layout.AOTI_FILENAME
    progress("AOTInductor compile (a C++ build; tens of seconds)")
    try:
        torch._inductor.aoti_compile_and_package(exported, package_path=str(path))
        loaded = torch._inductor.aoti_load_package(str(path))
    except Exception as err:
        folder.cleanup()
        raise ExportError(Problem(f"AOTInductor could not compile the exported program: {describe(err)}",
                                  model=model.name, field="export", details=full_text(err))) from None
    spec_in, spec_out = loaded.loader.get_call_spec()
    return Package(path, loaded, pt2_names.CallSpec.parse(spec_in, spec_out), folder, limits)


def _ranges(model: ModelSpec, binding: Binding, shapes: dict[str, Any]) -> list[str]:
    """'<input> dim <k> takes at most <max>' for each variable dim the model bounds (dims per example, as the
    manifest writes them; the batch Dim is ours, 1..max_batch_size)."""
    offset = 1 if model.max_batch_size > 0 else 0
    said = []
    for name, argument in binding.table():
        for index, dim in sorted((shapes.get(argument) or {}).items()):
            low, high = getattr(dim, "min", None), getattr(dim, "max", None)
            if index < offset:
                continue
            if high is not None and high < 2**31:
                said.append(f"{name} dim {index - offset} takes at most {high}")
            if low is not None and low > 2:
                said.append(f"{name} dim {index - offset} takes at least {low}")
    return said


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
