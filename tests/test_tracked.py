"""Every source the project runs is in git: an ignore rule that matches a folder of the package (``build/`` once
matched ``compiler/build/``) leaves a clean clone without modules that a working tree has, and only CI notices."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCE_SUFFIXES = {".py", ".yaml", ".pbtxt", ".json", ".md", ".txt"}


def _ignored(paths: list[str]) -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--others", "--ignored", "--exclude-standard", "--", *paths],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()
    return sorted(p for p in listed if Path(p).suffix in SOURCE_SUFFIXES and "__pycache__" not in p)


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="not a git checkout")
def test_no_source_file_of_the_project_is_ignored_by_git() -> None:
    ignored = _ignored(["compiler", "tests", "docs", "proto", "Makefile", "models.yaml"])
    assert ignored == [], f"ignored by .gitignore, so a clean clone lacks them: {ignored}"
