"""Adapt what users' models return to what Triton's PyTorch backend serves: a Tensor or a flat tuple of Tensors.

A model returning a dict (a plain one, or a transformers ModelOutput, from a transformers source or a python
factory alike) is wrapped so that it returns the values as a tuple in key order; the outputs are named after
the keys (`logits__0`, `probs__1`: the backend binds `<name>__<k>` to tuple element k), and build.json records
which key each output is. The wrapper's forward() takes exactly the bound arguments, under their own names, so
the export binds as the model does.

    keys = dict_keys(module(**example))              # ["logits", "probs"], or None for a Tensor or tuple
    module = wrap(module, binding, keys)              # forward(<bound arguments>) -> tuple
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Mapping
from typing import Any

from compiler.backend.pytorch import binding_rules as rules
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


def wrap(module: Any, binding: Binding, keys: list[str]) -> Any:
    """`module` behind a forward() with the bound parameters that returns its dict's values in `keys` order."""
    import torch

    params = _parameter_names(binding)
    if binding.convention == rules.FORWARD_ARGUMENT:
        call = ", ".join(f"{argument}={name}" for argument, name in zip(binding.arguments, params))
    else:
        call = ", ".join(params)
    values = ", ".join(f"out[{key!r}]" for key in keys)
    source = (f"def forward(self, {', '.join(params)}):\n"
              f"    out = self.inner({call})\n"
              f"    return ({values},)\n")
    namespace: dict[str, Any] = {}
    exec(compile(source, f"<tuple outputs of {type(module).__name__}>", "exec"), namespace)  # noqa: S102

    class TupleOutputs(torch.nn.Module):
        """Returns the wrapped model's dict values as a tuple, in key order."""

        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

    TupleOutputs.forward = namespace["forward"]  # type: ignore[method-assign]
    return TupleOutputs(module).eval()


def adapted(module: Any, binding: Binding, example: dict[str, Any]) -> tuple[Any, list[str] | None]:
    """`module`, wrapped when it returns a dict on `example` (eager, no_grad), and the dict's keys (else None).
    Export, verify and soak call this alike, so that they compare the same tuple."""
    import torch

    with torch.no_grad():
        keys = dict_keys(binding.call(module, example))
    return (wrap(module, binding, keys), keys) if keys is not None else (module, None)
