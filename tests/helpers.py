"""Helpers the tests import: a scratch project with the tiny models, CLI runners, tree hashes.

Fixtures live in conftest.py files (pytest finds them); what a test imports lives here.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


@dataclass
class Project:
    """A scratch folder holding the tiny test models, a manifest, and the repository built from it."""

    root: Path

    @classmethod
    def at(cls, root: Path) -> Project:
        shutil.copy(FIXTURES / "tiny_models.py", root / "tiny_models.py")
        return cls(root)

    def built(self, yaml_text: str) -> Project:
        """Write the manifest and build it; the build must succeed."""
        self.write(yaml_text)
        result = self.build()
        assert result.code == 0, result.err
        return self

    @property
    def manifest(self) -> Path:
        return self.root / "models.yaml"

    @property
    def output(self) -> Path:
        return self.root / "repo"

    def write(self, yaml_text: str) -> Path:
        self.manifest.write_text(textwrap.dedent(yaml_text).lstrip())
        return self.manifest

    def build(self, *extra: str) -> Result:
        return run_cli("build", "--manifest", str(self.manifest), "--output", str(self.output), *extra)


def run_cli(*args: str) -> Result:
    """The real click CLI, in this process (torch stays imported between tests)."""
    from compiler.cli import main

    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return Result(result.exit_code, result.stdout, result.stderr)


def run_subprocess(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> Result:
    """The CLI as a user runs it: a fresh interpreter."""
    proc = subprocess.run([sys.executable, *args], cwd=cwd or ROOT, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=900)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def tree_digest(root: Path) -> dict[str, str]:
    """Every file under root with its content hash (and mode), for byte-for-byte checks."""
    if not root.exists():
        return {}
    digest = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if path.is_file():
            digest[key] = hashlib.sha256(path.read_bytes()).hexdigest() + f" {path.stat().st_mode:o}"
        else:
            digest[key] = "dir"
    return digest


# -- data-driven cases: broken manifests that say what they must produce -----------------------------------------
NEGATIVE_CASES = sorted((Path(__file__).parent / "repository" / "negative_builds").glob("*.yaml")) + sorted(
    (Path(__file__).parent / "manifest" / "negative").glob("*.yaml"))


def expected_line(text: str) -> int:
    """`# expect-line: N`, or `# expect-key: K`: the line where key K is written."""
    fixed = re.search(r"^# expect-line: (\d+)$", text, re.M)
    if fixed:
        return int(fixed.group(1))
    key = re.search(r"^# expect-key: (\w+)$", text, re.M)
    if key is None:
        raise AssertionError("a case names its line with # expect-line: N or # expect-key: K")
    for number, line in enumerate(text.splitlines(), start=1):
        if re.match(rf"^\s*(- )?{key.group(1)}:", line):
            return number
    raise AssertionError(f"key {key.group(1)} is not in the case")


def expected_phrases(text: str) -> list[str]:
    return re.findall(r"^# expect: (.+)$", text, re.M)


def expected_model(text: str) -> str | None:
    """The model the message must name: `# expect-model: NAME`, else the case's only model; `# expect-model: -`
    for a problem of the whole manifest (the release, the models list)."""
    given = re.search(r"^# expect-model: (\S+)$", text, re.M)
    if given:
        return None if given.group(1) == "-" else given.group(1)
    names = re.findall(r"^\s*- name: ([\w.-]+)\s*$", text, re.M)
    return names[0] if len(set(names)) == 1 else None


def needs_model(text: str) -> bool:
    """`# needs-model`: only exporting (running) the model reveals the problem, so `validate` cannot."""
    return re.search(r"^# needs-model", text, re.M) is not None
