"""Fixtures shared by every test folder; the helpers they use are in tests/helpers.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import Project, run_subprocess

# The cross-version proof installs the torch of each target image (gigabytes): off for every test but those that
# test it (tests/compat/test_cross_proof.py turns it on), and for their subprocesses, which inherit this.
os.environ.setdefault("TRITON_COMPILER_CROSS_PROOF", "0")
# NVIDIA's PyTorch backend is built from the pinned archives beside the clone where they are (CI here reaches no
# GitHub); the Makefile says the same for make setup.
_VENDORED = Path(__file__).resolve().parents[2] / "shared" / "vendor" / "triton-backend-sources"
if _VENDORED.is_dir():
    os.environ.setdefault("TRITON_BACKEND_SOURCES", str(_VENDORED))


#: The longest modules (setup included, measured in `make test`), started first: `make test` runs them on parallel
#: workers (pytest-xdist), and a long one started last would end alone. Only the order depends on this list.
LONGEST_FIRST = (
    "acceptance/test_pipelines.py", "acceptance/test_example_repository.py", "acceptance/test_no_request_crashes.py",
    "check/test_server_agrees.py",  # three shards of about 2 minutes, mostly waiting on the server: beside the builds
    "acceptance/test_bench.py", "acceptance/test_serve_verify.py", "acceptance/test_zoo_aoti.py",
    "acceptance/test_aoti.py", "acceptance/test_zoo.py", "acceptance/test_model_analyzer.py",
    "compat/test_cross_proof.py", "acceptance/test_served_tiny_models.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The longest modules first (`--dist loadscope --no-loadscope-reorder` hands workers whole modules in this
    order, so that a module's fixtures are made once)."""
    tests = Path(__file__).parent
    missing = [name for name in LONGEST_FIRST if not (tests / name).is_file()]
    if missing:
        raise pytest.UsageError(f"tests/conftest.py LONGEST_FIRST names {', '.join(missing)}, which tests/ lacks")
    rank = {str(tests / name): number for number, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(str(item.path), len(rank)))  # stable: the rest keep their order


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", help="rewrite tests/golden/*.pbtxt from the code")


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project.at(tmp_path)


@pytest.fixture(scope="session")
def example_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The committed models.yaml, built once per test run by the real CLI. Parallel workers (pytest-xdist) share
    one folder: the first builds it, the others wait on the build's lock and find it unchanged."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        output = tmp_path_factory.getbasetemp().parent / "example" / "models"  # the run's folder, above each worker's
    else:
        output = tmp_path_factory.mktemp("example") / "models"
    result = run_subprocess("-m", "compiler", "build", "--manifest", "models.yaml", "--output", str(output))
    assert result.code == 0, result.err
    assert "input  attention_mask -> forward(attention_mask)" in result.out
    return output
