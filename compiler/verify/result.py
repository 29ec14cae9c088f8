"""One row of verify's table: a model, what was checked, over which protocol, and how it went."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    model: str
    check: str
    protocol: str
    ok: bool
    detail: str = ""
