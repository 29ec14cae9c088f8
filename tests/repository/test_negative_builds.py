"""Every broken manifest, through the real `build`: exit 1, one clear message with
file:line and model, no traceback, and the existing repository byte for byte.

Cases are data: tests/manifest/negative/ (manifest errors) and
tests/repository/negative_builds/ (source and export errors).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.helpers import NEGATIVE_CASES, Project, expected_line, expected_model, expected_phrases, tree_digest

CASES = NEGATIVE_CASES
GOOD = 'models:\n  - name: good\n    source: {python: "tiny_models:affine"}\n    inputs: [{name: x, dtype: FP32, dims: [4]}]\n'


def test_at_least_thirty_cases() -> None:
    assert len(CASES) >= 30 + 20


@pytest.fixture(scope="module")
def prebuilt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Project.at(tmp_path_factory.mktemp("prebuilt")).built(GOOD).output


@pytest.mark.parametrize("case", CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_broken_manifest_fails_cleanly_and_leaves_the_repository(case: Path, project: Project, prebuilt: Path) -> None:
    shutil.copytree(prebuilt, project.output)
    before = tree_digest(project.output)
    shutil.copy(case, project.manifest)
    text = case.read_text()
    line = expected_line(text)
    result = project.build()
    assert result.code == 1, result.out + result.err
    assert "Traceback" not in result.text
    assert f"{project.manifest}:{line}" in result.err
    for phrase in expected_phrases(text):
        assert phrase in result.err
    model = expected_model(text)
    if model is not None:
        assert f"model '{model}'" in result.err, result.err
    assert tree_digest(project.output) == before
    assert not list(project.root.glob(".repo.staging-*"))


def test_allow_path_admits_a_folder_outside(project: Project, tmp_path_factory: pytest.TempPathFactory) -> None:
    import torch

    from tests.fixtures.tiny_models import Affine

    elsewhere = tmp_path_factory.mktemp("weights")
    torch.save(Affine().state_dict(), elsewhere / "w.pt")
    project.write(GOOD.replace('"tiny_models:affine"', f'"tiny_models:affine", weights: {elsewhere / "w.pt"}'))
    refused = project.build()
    assert refused.code == 1 and "outside the manifest's folder" in refused.err
    assert project.build("--allow-path", str(elsewhere)).code == 0
