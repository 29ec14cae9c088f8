"""Adapt users' models to what Triton's PyTorch backend serves, in one wrapper: checked inputs, servable outputs.

* Outputs. A model returning a dict (a plain one, an OrderedDict, or a transformers ModelOutput) is served as the
  tuple of its values in key order for TorchScript (the outputs are named after the keys, `logits__0`: the
  backend binds `<name>__<k>` to tuple element k; build.json records which key each output is), and as a plain
  dict for an AOTInductor package, whose call spec then names the outputs after the keys (`RESULT[logits]`), as
  pytorch_backend's pt2 reader derives them; a ModelOutput or an OrderedDict is no type a call spec may hold.
* Inputs. Guards (guards.py) run on the inputs before the model.

The wrapper's forward() takes exactly the bound arguments, under their own names, so the export binds as the model
does.

    keys = dict_keys(module(**example))                     # ["logits", "probs"], or None for a Tensor or tuple
    module = wrap(module, binding, keys)                     # forward(<bound arguments>) -> tuple
    module = wrap(module, binding, keys, checks, as_dict=True)   # guarded, returning {"logits": ..., ...}
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Callable, Mapping
from typing import Any

from compiler.backend.pytorch import binding_rules as rules
from compiler.datatypes import Tensors
from compiler.export.binding import Binding


def dict_keys(result: Any) -> list[str] | None:
    """The keys of a dict-like result (transformers' ModelOutput drops None values itself), else None."""
    if isinstance(result, Mapping):
        return [str(key) for key in result]
    return None


def output_name(key: str, index: int) -> str:
    """A Triton tensor name for dict key `key` at tuple position `index`: `<key>__<index>`."""
    safe = re.sub(r"[^A-Za-z0-9_]", "_", key).strip("_") or "OUTPUT"
    return f"{safe}__{index}"


def _parameter_names(binding: Binding) -> list[str]:
    names = []
    for position, argument in enumerate(binding.arguments):
        ok = argument.isidentifier() and not keyword.iskeyword(argument) and argument != "self"
        names.append(argument if ok and argument not in names else f"input_{position}")
    return names


def wrap(module: Any, binding: Binding, keys: list[str] | None = None,
         checks: dict[str, Callable[[Any], Any]] | None = None, as_dict: bool = False) -> Any:
    """`module` behind a forward() with the bound parameters: each input through its check (by config name) first,
    then the model; a dict result comes back as the tuple of its values in `keys` order (or, `as_dict`, as a plain
    dict in that order)."""
    import torch

    params = _parameter_names(binding)
    checked = checks or {}
    lines = [f"    {param} = self.checks[{name!r}]({param})" for name, param in zip(binding.order, params)
             if name in checked]
    if binding.convention == rules.FORWARD_ARGUMENT:
        call = ", ".join(f"{argument}={name}" for argument, name in zip(binding.arguments, params))
    else:
        positional = [param for name, param in zip(binding.order, params) if name not in binding.keywords]
        named = [f"{argument}={param}" for name, argument, param in zip(binding.order, binding.arguments, params)
                 if name in binding.keywords]
        call = ", ".join(positional + named)
    if keys is None:
        result = "out"
    elif as_dict:
        result = "self.plain(out)"
    else:
        result = "(" + "".join(f"out[{key!r}], " for key in keys) + ")"
    source = (f"def forward(self, {', '.join(params)}):\n" + "".join(line + "\n" for line in lines)
              + f"    out = self.inner({call})\n    return {result}\n")
    namespace: dict[str, Any] = {}
    exec(compile(source, f"<served {type(module).__name__}>", "exec"), namespace)  # noqa: S102

    class Served(torch.nn.Module):
        """The wrapped model as Triton serves it: checked inputs, servable outputs."""

        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner
            self.checks = dict(checked)
            self.plain = plain

    Served.forward = namespace["forward"]  # type: ignore[method-assign]
    return Served(module).eval()


def plain(result: Any) -> Any:
    """`result` with every mapping (a ModelOutput, an OrderedDict, nested ones too) a plain dict in its key order,
    None values dropped, and tuples and lists kept: the containers an AOTInductor call spec may hold."""
    if isinstance(result, Mapping):
        return {str(key): plain(value) for key, value in result.items() if value is not None}
    if isinstance(result, (tuple, list)):
        return type(result)(plain(value) for value in result) if type(result) in (tuple, list) else \
            tuple(plain(value) for value in result)
    return result


def adapted(module: Any, binding: Binding, example: Tensors, as_dict: bool = False) -> tuple[Any, list[str] | None]:
    """`module`, wrapped when it returns a dict on `example` (eager, no_grad), and the dict's keys (else None).
    Export, verify, soak and bench call this alike, so that they compare the same outputs."""
    import torch

    with torch.no_grad():
        result = binding.call(module, example)
    keys = dict_keys(result)
    if keys is None:
        return module, keys
    return wrap(module, binding, keys, as_dict=as_dict), keys
