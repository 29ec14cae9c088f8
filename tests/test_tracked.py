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


def _tracked(folder: Path) -> list[str]:
    return subprocess.run(["git", "ls-files", "--", str(folder.relative_to(ROOT))], cwd=ROOT, capture_output=True,
                          text=True, check=True).stdout.split()


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="not a git checkout")
def test_every_version_folder_of_a_check_case_is_in_git() -> None:
    """git keeps no empty folder: a case's version folder without a tracked file (.gitkeep) is missing from a clean
    clone, and the server then refuses the model for another reason than the case's."""
    versions = [v for v in (ROOT / "tests" / "check" / "cases").glob("*/models/*/*") if v.is_dir() and v.name.isdigit()]
    assert versions
    untracked = [str(v.relative_to(ROOT)) for v in versions if not _tracked(v)]
    assert untracked == [], f"add a .gitkeep to each: {untracked}"
