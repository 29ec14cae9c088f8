"""Devices that tracing froze into a TorchScript program.

Tracing records `torch.ones(..., device=x.device)` as a constant device: a model
traced on CPU keeps making CPU tensors when served on a GPU, and fails there
with mixed devices. Shared by the build (before emitting instance groups) and
by `check`.
"""

from __future__ import annotations

import re
from typing import Any

_CONSTANT = re.compile(r'Device = prim::Constant\[value="(cpu|cuda[^"]*)"\]')


def baked_devices(scripted: Any) -> set[str]:
    """{'cpu'} or {'cuda:0'}..., the device constants in the inlined forward graph."""
    found = set(_CONSTANT.findall(str(scripted.inlined_graph)))
    for text in ('torch.device("cpu")', "torch.device(\"cuda"):
        if text in getattr(scripted, "code", ""):
            found.add("cpu" if "cpu" in text else "cuda")
    return {"cuda" if d.startswith("cuda") else d for d in found}
