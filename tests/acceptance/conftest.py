"""Fixtures of the acceptance tests: the committed manifest's repository served by the real tritonserver; the zoo's
models in a folder of their own."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from compiler.server.process import TritonProcess
from compiler.server.session import embedded_server
from tests.helpers import ROOT


@pytest.fixture(scope="session")
def example_server(example_repository: Path) -> Iterator[TritonProcess]:
    """The example repository loaded as `serve` loads it (explicit model control, overrides where needed), once per
    test run: no request can crash a model (guards), and a stub that dies anyway is reloaded by the server's watch."""
    with embedded_server(example_repository) as (process, _):
        yield process


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/zoo/ copied into a folder of its own, with the checkpoint folder a user would have saved."""
    folder = tmp_path_factory.mktemp("zoo")
    for item in (ROOT / "tests" / "zoo").iterdir():
        if item.suffix in (".py", ".yaml"):
            shutil.copy(item, folder / item.name)
    sys.path.insert(0, str(folder))
    try:
        import zoo_models

        zoo_models.save_tiny_gpt2(str(folder / "gpt2"))  # a user's own checkpoint folder
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop("zoo_models", None)
    return folder
