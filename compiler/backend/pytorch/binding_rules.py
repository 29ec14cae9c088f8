"""How Triton's PyTorch (libtorch) backend binds config tensors to forward().

Pure Python on purpose: the compiler imports it to predict the binding at
build time, and the embedded backend (model.py beside it) loads it by path
to apply the very same rules at serving time.

Inputs: FORWARD_ARGUMENT when every configured name is a forward() argument,
else NAMED_INDEX when every name is ``<name>__<index>`` (the text after the
first ``__`` all digits), else STRICT_CONFIG_ORDERING (config order).
Outputs: NAMED_INDEX, else STRICT_CONFIG_ORDERING.
"""

from __future__ import annotations

FORWARD_ARGUMENT = "FORWARD_ARGUMENT"
NAMED_INDEX = "NAMED_INDEX"
STRICT_CONFIG_ORDERING = "STRICT_CONFIG_ORDERING"


def named_index(name: str) -> int | None:
    _, sep, tail = name.partition("__")
    if not sep or not tail.isdigit():
        return None
    return int(tail)


def bind_inputs(config_names: list[str], forward_args: list[str]) -> tuple[str, dict[str, int]]:
    """(convention, {config name: forward position})."""
    if forward_args and all(name in forward_args for name in config_names):
        return FORWARD_ARGUMENT, {name: forward_args.index(name) for name in config_names}
    indices = [named_index(name) for name in config_names]
    if all(index is not None for index in indices):
        return NAMED_INDEX, {name: int(index) for name, index in zip(config_names, indices)}  # type: ignore[arg-type]
    return STRICT_CONFIG_ORDERING, {name: i for i, name in enumerate(config_names)}


def bind_outputs(config_names: list[str]) -> tuple[str, dict[str, int]]:
    """(convention, {config name: index in the returned tuple})."""
    indices = [named_index(name) for name in config_names]
    if all(index is not None for index in indices):
        return NAMED_INDEX, {name: int(index) for name, index in zip(config_names, indices)}  # type: ignore[arg-type]
    return STRICT_CONFIG_ORDERING, {name: i for i, name in enumerate(config_names)}
