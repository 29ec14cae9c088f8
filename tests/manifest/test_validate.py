"""`validate` (the pre-commit hook) applies every rule that needs no model: each broken-manifest case is refused by
`validate` at the line and with the words `build` uses, unless the case is marked `# needs-model`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.helpers import NEGATIVE_CASES, Project, expected_line, expected_phrases, needs_model, run_cli


@pytest.mark.parametrize("case", NEGATIVE_CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_validate_refuses_what_build_refuses_without_running_a_model(case: Path, project: Project) -> None:
    shutil.copy(case, project.manifest)
    text = case.read_text()
    result = run_cli("validate", str(project.manifest))
    if needs_model(text):
        assert result.code == 0, f"validate now catches this case: drop its `# needs-model` line\n{result.err}"
        return
    assert result.code == 1, result.out
    assert f"{project.manifest}:{expected_line(text)}" in result.err
    for phrase in expected_phrases(text):
        assert phrase in result.err


def test_most_cases_need_no_model() -> None:
    static = [case for case in NEGATIVE_CASES if not needs_model(case.read_text())]
    assert len(static) >= 40 and len(NEGATIVE_CASES) - len(static) <= 12


def test_validate_imports_no_torch(project: Project) -> None:
    from tests.helpers import run_subprocess

    project.write("""
        models:
          - name: m
            source: {python: "tiny_models:affine", weights: w.pt}
            inputs: [{name: x, dtype: FP32, dims: [4]}]
    """)
    (project.root / "w.pt").write_bytes(b"")
    probe = ("import sys; from compiler.cli import main; sys.argv = ['compiler', 'validate', sys.argv[1]]\n"
             "try:\n    main()\nexcept SystemExit as done:\n    assert 'torch' not in sys.modules, 'torch imported'\n"
             "    raise")
    result = run_subprocess("-c", probe, str(project.manifest))
    assert result.code == 0, result.err
