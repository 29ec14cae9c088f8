"""How a model's state is said (serve's table, verify's "ready" rows): Triton's reason beside a state that is not
READY, so that a model found UNAVAILABLE says why."""

from __future__ import annotations

from compiler.server.process import ModelState
from compiler.server.session import status_table


def test_a_state_that_is_not_ready_carries_its_reason() -> None:
    assert ModelState("affine", "1", "UNAVAILABLE", "unloaded").described == "UNAVAILABLE: unloaded"
    assert ModelState("affine", "1", "LOADING", "").described == "LOADING"
    assert ModelState("affine", "1", "READY", "loaded").described == "READY"


def test_the_serve_table_says_the_reason() -> None:
    table = status_table([ModelState("affine", "1", "READY", ""), ModelState("features", "1", "UNAVAILABLE",
                                                                             "unloaded")])
    assert "| affine   | 1       | READY                 |" in table
    assert "| features | 1       | UNAVAILABLE: unloaded |" in table
