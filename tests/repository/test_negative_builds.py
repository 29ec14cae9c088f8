"""Every broken manifest, through the real `build`: exit 1, one clear message with
file:line and model, no traceback, and the existing repository byte for byte.

Cases are data: tests/manifest/negative/ (manifest errors) and
tests/repository/negative_builds/ (source and export errors).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.helpers import Project, tree_digest

HERE = Path(__file__).parent
CASES = sorted((HERE / "negative_builds").glob("*.yaml")) + sorted((HERE.parent / "manifest" / "negative").glob("*.yaml"))
GOOD = 'models:\n  - name: good\n    source: {python: "tiny_models:affine"}\n    inputs: [{name: x, dtype: FP32, dims: [4]}]\n'


def _expected_line(text: str) -> int:
    """`# expect-line: N`, or `# expect-key: K`: the line where key K is written."""
    fixed = re.search(r"^# expect-line: (\d+)$", text, re.M)
    if fixed:
        return int(fixed.group(1))
    key = re.search(r"^# expect-key: (\w+)$", text, re.M).group(1)  # type: ignore[union-attr]
    for number, line in enumerate(text.splitlines(), start=1):
        if re.match(rf"^\s*(- )?{key}:", line):
            return number
    raise AssertionError(f"key {key} is not in the case")


def _expected_model(text: str) -> str | None:
    """The model the message must name: `# expect-model: NAME`, else the case's only model; `# expect-model: -`
    for a problem of the whole manifest (the release, the models list)."""
    given = re.search(r"^# expect-model: (\S+)$", text, re.M)
    if given:
        return None if given.group(1) == "-" else given.group(1)
    names = re.findall(r"^\s*- name: ([\w.-]+)\s*$", text, re.M)
    return names[0] if len(set(names)) == 1 else None


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
    line = _expected_line(text)
    result = project.build()
    assert result.code == 1, result.out + result.err
    assert "Traceback" not in result.text
    assert f"{project.manifest}:{line}" in result.err
    for phrase in re.findall(r"^# expect: (.+)$", text, re.M):
        assert phrase in result.err
    model = _expected_model(text)
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
