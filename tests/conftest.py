"""Fixtures shared by every test folder; the helpers they use are in tests/helpers.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import Project, run_subprocess

# The cross-version proof installs the torch of each target image (gigabytes): off for every test but those that
# test it (tests/compat/test_cross_proof.py turns it on), and for their subprocesses, which inherit this.
os.environ.setdefault("TRITON_COMPILER_CROSS_PROOF", "0")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", help="rewrite tests/golden/*.pbtxt from the code")


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project.at(tmp_path)


@pytest.fixture(scope="session")
def example_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The committed models.yaml, built once per test session by the real CLI."""
    output = tmp_path_factory.mktemp("example") / "models"
    result = run_subprocess("-m", "compiler", "build", "--manifest", "models.yaml", "--output", str(output))
    assert result.code == 0, result.err
    assert "input  KWARGS[attention_mask] -> forward(attention_mask)" in result.out
    return output
