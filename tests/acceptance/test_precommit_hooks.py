"""Each published pre-commit hook, run the way pre-commit runs it: entry + args + matching files."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.helpers import ROOT, run_subprocess

HOOKS = {hook["id"]: hook for hook in YAML(typ="safe").load((ROOT / ".pre-commit-hooks.yaml").read_text())}
BIN = Path(sys.executable).parent


def _run_hook(hook_id: str, files: list[Path], cwd: Path) -> subprocess.CompletedProcess[str]:
    hook = HOOKS[hook_id]
    pattern = re.compile(hook["files"])
    chosen = [str(f.relative_to(cwd)) for f in files if pattern.search(str(f.relative_to(cwd)))]
    command = shlex.split(hook["entry"]) + list(hook.get("args", []))
    if hook.get("pass_filenames", True):
        if not chosen:
            pytest.fail(f"{hook_id}: no file matches {hook['files']}")
        command += chosen
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env, timeout=300)


def test_hooks_are_published() -> None:
    assert set(HOOKS) == {"validate-manifest", "check-repository"}
    for hook in HOOKS.values():
        assert hook["language"] == "python" and hook["entry"].startswith("triton-compiler ")


def test_validate_manifest_hook(tmp_path: Path) -> None:
    good = tmp_path / "models.yaml"
    good.write_text((ROOT / "models.yaml").read_text())
    bad = tmp_path / "sub" / "models.yml"
    bad.parent.mkdir()
    bad.write_text("models:\n  - name: m\n    source: {python: 'a:b'}\n    inputs: [{name: x, dtype: FP33, dims: [4]}]\n")
    other = tmp_path / "notes.yaml"
    other.write_text("not: a manifest\n")
    passed = _run_hook("validate-manifest", [good, other], tmp_path)
    assert passed.returncode == 0, passed.stderr
    assert "models.yaml: ok (3 models, Triton 26.11)" in passed.stdout
    failed = _run_hook("validate-manifest", [good, bad], tmp_path)
    assert failed.returncode == 1
    assert "sub/models.yml:4" in failed.stderr and "did you mean TYPE_FP32" in failed.stderr


def test_validate_never_imports_torch() -> None:
    probe = textwrap.dedent("""
        import sys
        from compiler.cli import main
        try:
            main(["validate", "models.yaml"])
        except SystemExit as exit:
            assert not exit.code
        assert "torch" not in sys.modules
        print("no torch")
    """)
    result = run_subprocess("-c", probe)
    assert result.code == 0 and "no torch" in result.out, result.err


def test_check_repository_hook(tmp_path: Path) -> None:
    folder = tmp_path / "Triton" / "models" / "m"
    (folder / "1").mkdir(parents=True)
    config = folder / "config.pbtxt"
    config.write_text('name: "m"\nplatform: "pytorch_libtorch"\nmax_batch_size: 0\n'
                      'input { name: "INPUT__0" data_type: TYPE_FP32 dims: 4 }\n'
                      'output { name: "OUTPUT__0" data_type: TYPE_FP32 dims: 4 }\n')
    (folder / "1" / "model.pt").write_bytes(b"placeholder: the hook does not load models with --no-run")
    passed = _run_hook("check-repository", [config], tmp_path)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    config.write_text(config.read_text().replace("TYPE_FP32 dims: 4 }\noutput", "TYPE_UINT32 dims: 4 }\noutput"))
    failed = _run_hook("check-repository", [config], tmp_path)
    assert failed.returncode == 1 and "TYPE_UINT32" in failed.stdout


def test_this_repositorys_own_config_uses_the_hooks_and_ruff() -> None:
    config = YAML(typ="safe").load((ROOT / ".pre-commit-config.yaml").read_text())
    ids = {hook["id"] for repo in config["repos"] for hook in repo["hooks"]}
    assert {"validate-manifest", "check-repository", "ruff"} <= ids
