"""`check` against the real tritonserver: each folder in tests/check/cases/ is a repository and a verdict
(case.yaml). Both must accept it, or both must reject it for the same fault: the server in the words case.yaml
quotes from its log, `check` with the finding it names. Add a folder, get a test.

    case.yaml:  verdict: accept | reject
                model:   the model the fault belongs to (default: the only one)
                server:  words of the server's refusal        check:  words of check's error
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from compiler.check import check_repository
from compiler.check.findings import ERROR
from compiler.errors import ServerError
from compiler.server.process import TritonProcess

pytestmark = pytest.mark.tritonserver

CASES = sorted(p for p in (Path(__file__).parent / "cases").iterdir() if (p / "case.yaml").is_file())
RELEASE = "24.10"  # the embedded server's
IDENTITY = Path(__file__).parent / "identity_model.py"


def test_there_are_positive_and_negative_cases() -> None:
    verdicts = [YAML(typ="safe").load((case / "case.yaml").read_text())["verdict"] for case in CASES]
    assert verdicts.count("accept") >= 3 and verdicts.count("reject") >= 7


def _give_python_models_their_file(repository: Path) -> None:
    """Every Python-backend model of a case runs the same identity model.py (OUTPUT0 = INPUT0); the cases hold only
    what differs, their configs."""
    for config in repository.glob("*/config.pbtxt"):
        if 'backend: "python"' in config.read_text():
            for version in (p for p in config.parent.iterdir() if p.is_dir() and p.name.isdigit()):
                shutil.copy(IDENTITY, version / "model.py")


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_check_and_the_server_agree(case: Path, tmp_path: Path) -> None:
    spec = YAML(typ="safe").load((case / "case.yaml").read_text())
    repository = tmp_path / "models"
    shutil.copytree(case / "models", repository, ignore=shutil.ignore_patterns(".gitkeep"))
    _give_python_models_their_file(repository)
    findings, _, _ = check_repository(repository, RELEASE, run_models=False)
    errors = [f"{f.model}: {f.message}" for f in findings if f.severity == ERROR]

    refused: dict[str, str] = {}
    with TritonProcess(repository, explicit_models=True) as server:
        server.wait_live(timeout=60)
        for model in sorted(p.name for p in repository.iterdir() if p.is_dir()):
            try:
                server.load_model(model, timeout=60)
            except ServerError as err:
                refused[model] = err.render()

    if spec["verdict"] == "accept":
        assert not refused, refused
        assert not errors, errors
        return
    model = spec.get("model") or next(iter(sorted(p.name for p in repository.iterdir())))
    assert model in refused and spec["server"] in refused[model], refused
    assert any(e.startswith(f"{model}: ") and spec["check"] in e for e in errors), errors
