"""Bind manifest inputs to forward() arguments exactly as the libtorch backend will.

The seed hand-wrote INPUT__0/INPUT__1 for a BERT traced with
(input_ids, token_type_ids): index 1 is forward()'s attention_mask, so token
type ids were served as the attention mask. Here every input must bind to the
argument it names, no required argument may be left unbound, the binding is
checked again on the exported module, and it is printed.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

from compiler.backend.pytorch import binding_rules as rules
from compiler.backend.pytorch import pt2_names
from compiler.datatypes import Tensors
from compiler.errors import ExportError, Problem
from compiler.manifest.schema import ModelSpec, TransformersSource

#: AOTI packages: inputs bind by the package's call spec (INPUT__<n>/ARGS[<i>] by position, KWARGS[<name>] by
#: keyword); see export/aoti.py and backend/pytorch/pt2_names.py.
PT2_CALL_SPEC = "PT2_CALL_SPEC"


@dataclass(frozen=True)
class Binding:
    convention: str  # FORWARD_ARGUMENT, NAMED_INDEX or PT2_CALL_SPEC
    order: list[str]  # config input names: positional ones in forward() order, then keyword ones
    arguments: list[str]  # the forward() argument each of `order` lands in
    keywords: tuple[str, ...] = ()  # PT2_CALL_SPEC: the config names passed by keyword

    def table(self) -> list[tuple[str, str]]:
        return list(zip(self.order, self.arguments))

    def describe(self) -> str:
        return ", ".join(f"{name} -> {arg}" for name, arg in self.table())

    def split(self, inputs: Tensors) -> tuple[list[Any], dict[str, Any]]:
        """(positional values, keyword values) as the module is called."""
        if self.convention == rules.FORWARD_ARGUMENT:
            return [], {argument: inputs[name] for name, argument in self.table()}
        args = [inputs[name] for name in self.order if name not in self.keywords]
        kwargs = {argument: inputs[name] for name, argument in self.table() if name in self.keywords}
        return args, kwargs

    def call(self, module: Any, inputs: Tensors) -> Any:
        """Run `module` (eager or exported) on config-named inputs as the backend binds them: by argument name,
        or by position. By name matters for an eager forward(input_ids, attention_mask, decoder_input_ids) bound
        to input_ids and decoder_input_ids: by position, the decoder ids would land in attention_mask."""
        args, kwargs = self.split(inputs)
        return module(*args, **kwargs)


def _fail(model: ModelSpec, message: str, hint: str | None = None) -> ExportError:
    return ExportError(Problem(message, model=model.name, field="inputs", hint=hint))


def forward_parameters(module: Any) -> list[inspect.Parameter]:
    if hasattr(module, "forward") and hasattr(module.forward, "schema"):  # ScriptModule
        return [
            inspect.Parameter(arg.name, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                              default=inspect.Parameter.empty if arg.default_value is None else arg.default_value)
            for arg in module.forward.schema.arguments[1:]
        ]
    return list(inspect.signature(module.forward).parameters.values())


def bind(model: ModelSpec, module: Any) -> Binding:
    """How the backend will bind `model`'s inputs to `module`'s forward(): by the libtorch rules for TorchScript,
    by the package's call spec for `export: aoti`."""
    from compiler.sources.loading import LoadedPackage

    if isinstance(module, LoadedPackage):
        return _bind_package(model, module)
    if model.export == "aoti":
        return _bind_pt2(model, module)
    names = [spec.name for spec in model.inputs]
    params = forward_parameters(module)
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    keywordable = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    signature = f"forward({', '.join(p.name for p in params)})"
    convention, _ = rules.bind_inputs(names, keywordable)

    if convention == rules.FORWARD_ARGUMENT:
        order = [p.name for p in params if p.name in names]
        bound = set(order)
    elif convention == rules.NAMED_INDEX:
        if isinstance(model.source, TransformersSource):
            raise _fail(model, f"inputs {names} bind by position to {signature}",
                        "transformers models must name inputs after forward() arguments (input_ids, attention_mask, "
                        "token_type_ids): by position, token type ids once reached attention_mask")
        indices = sorted(rules.named_index(n) for n in names)  # type: ignore[type-var]
        if indices != list(range(len(names))):
            raise _fail(model, f"<name>__<index> inputs must number 0..{len(names) - 1} once each, got {indices}",
                        "renumber them so that index k is forward()'s k-th argument")
        if len(names) > len(positional) and not any(p.kind == p.VAR_POSITIONAL for p in params):
            raise _fail(model, f"{len(names)} inputs, but {signature} takes {len(positional)} positional arguments")
        order = sorted(names, key=lambda n: rules.named_index(n))  # type: ignore[arg-type, return-value]
        bound = {p.name for p in positional[: len(names)]}
        args = [p.name for p in positional[: len(names)]]
        args += [f"*{i}" for i in range(len(args), len(names))]
        check_unbound(model, params, bound, signature)
        _check_list_arguments(model, params, bound)
        return Binding(convention, order, args)
    else:
        stray = [n for n in names if n not in keywordable and rules.named_index(n) is None]
        raise _fail(model, f"input names {stray} are neither arguments of {signature} nor <name>__<index>; "
                    "Triton would silently bind inputs in config order",
                    f"name each input after its forward() argument ({', '.join(keywordable)}) or INPUT__<k>")
    check_unbound(model, params, bound, signature)
    _check_list_arguments(model, params, bound)
    return Binding(convention, order, list(order))


def _bind_package(model: ModelSpec, package: Any) -> Binding:
    """Manifest names -> the inputs of a package given as it is (a `pt2:` source), by its own call spec: the names
    the backend gives them (ARGS[i], KWARGS[name], INPUT__n), each at most once."""
    spec = pt2_names.CallSpec.parse(*package.call_spec())
    by_position: dict[int, str] = {}
    by_keyword: dict[str, str] = {}
    for item in model.inputs:
        if item.name not in spec.inputs:
            raise _fail(model, f"input '{item.name}' is not an input of the package, whose call spec names "
                        f"{', '.join(spec.forward_inputs)}", "name each input as the call spec does (or INPUT__<n>)")
        target = pt2_names.input_argument(item.name)
        position = spec.inputs[item.name]
        if target is not None and target[0] == "keyword":
            by_keyword[str(target[1])] = item.name
        else:
            by_position[position] = item.name
    if len(by_position) + len(by_keyword) != len(spec.forward_inputs):
        raise _fail(model, f"{len(model.inputs)} inputs, the package takes {len(spec.forward_inputs)} "
                    f"({', '.join(spec.forward_inputs)})", "declare one input for each")
    order = [by_position[i] for i in sorted(by_position)] + list(by_keyword.values())
    arguments = [spec.forward_inputs[i] for i in sorted(by_position)] + list(by_keyword)
    return Binding(PT2_CALL_SPEC, order, arguments, keywords=tuple(by_keyword.values()))


def _bind_pt2(model: ModelSpec, module: Any) -> Binding:
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


def _check_list_arguments(model: ModelSpec, params: list[inspect.Parameter], bound: set[str]) -> None:
    """Triton hands forward() one tensor per input, never a list: a model taking `images: List[Tensor]`
    (torchvision's detection models) has no direct path."""
    for p in params:
        text = p.annotation if isinstance(p.annotation, str) else inspect.formatannotation(p.annotation)
        origin = getattr(p.annotation, "__origin__", None)
        if p.name in bound and (origin in (list, tuple) or str(text).lower().startswith(("list[", "sequence[", "tuple["))):
            raise _fail(model, f"forward() takes '{p.name}' as a list ({text}); Triton passes each input as one tensor",
                        "wrap the model so that it takes tensors and returns tensors: docs/proof.md, 'Models without a "
                        "direct path', has the recipe for detection models")


def check_unbound(model: ModelSpec, params: list[inspect.Parameter], bound: set[str], signature: str) -> None:
    required = [
        p.name for p in params
        if p.default is inspect.Parameter.empty
        and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    missing = [name for name in required if name not in bound]
    if missing:
        raise _fail(model, f"{signature} argument(s) {missing} have no input", "add an input for each")


def check_exported(model: ModelSpec, exported: Any, binding: Binding) -> list[str]:
    """Apply the libtorch rules to the exported module; return its forward() argument names."""
    names = [spec.name for spec in model.inputs]
    args = [arg.name for arg in exported.forward.schema.arguments[1:]]
    if len(args) != len(names):
        raise _fail(model, f"the exported forward({', '.join(args)}) takes {len(args)} arguments, the config has "
                    f"{len(names)} inputs; Triton would refuse to load it",
                    "with export: script, every forward() argument (optional ones too) needs an input")
    convention, index = rules.bind_inputs(names, args)
    if convention != binding.convention:
        raise _fail(model, f"the exported module binds inputs by {convention}, expected {binding.convention}")
    for position, name in enumerate(binding.order):
        if index[name] != position:
            raise _fail(model, f"input '{name}' would reach exported argument '{args[index[name]]}', "
                        f"not position {position}")
    return args
