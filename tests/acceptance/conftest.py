"""Fixtures of the acceptance tests: the committed manifest's repository served by the real tritonserver."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from compiler.server.process import TritonProcess
from compiler.server.session import embedded_server


@pytest.fixture(scope="session")
def example_server(example_repository: Path) -> Iterator[TritonProcess]:
    """The example repository loaded as `serve` loads it (explicit model control, overrides where needed), once per
    test run: no request can crash a model (guards), and a stub that dies anyway is reloaded by the server's watch."""
    with embedded_server(example_repository) as (process, _):
        yield process
