"""A build killed at any point leaves a whole repository; builds on one output take turns."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from compiler.repository.swap import RepositoryLock
from compiler.triton_config import parse_text
from tests.helpers import ROOT, Project, tree_digest


def _manifest(batch: int) -> str:
    entries = "".join(f"""
  - name: {name}
    source: {{python: "tiny_models:{factory}"}}
    max_batch_size: {batch}
    inputs: [{{name: x, dtype: FP32, dims: [-1], example: {{shape: [6]}}}}]
""" for name, factory in (("first", "two_outputs"), ("second", "two_outputs"), ("third", "two_outputs")))
    return "models:" + entries


def _build_process(project: Project, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "compiler", "build", "--manifest", str(project.manifest),
                             "--output", str(project.output), *extra], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _complete(repo: Path, batch: int) -> bool:
    names = sorted(p.name for p in repo.iterdir())
    if names != ["first", "second", "third"]:
        return False
    for name in names:
        config = parse_text((repo / name / "config.pbtxt").read_text())
        if config.max_batch_size != batch or not (repo / name / "1" / "model.pt").stat().st_size:
            return False
    return True


@pytest.mark.slow
def test_sigkill_at_random_points_never_leaves_a_broken_repository(project: Project) -> None:
    project.write(_manifest(2))
    assert project.build().code == 0
    old = tree_digest(project.output)
    project.write(_manifest(3))
    rng = random.Random(20261124)
    outcomes = []
    for _ in range(8):
        process = _build_process(project, "--force")
        time.sleep(rng.uniform(0.2, 6.0))
        process.send_signal(signal.SIGKILL)
        process.wait()
        current = tree_digest(project.output)
        if current == old:
            outcomes.append("old")
        else:
            assert _complete(project.output, 3), "a killed build left a half-written repository"
            outcomes.append("new")
            old = current
    result = project.build("--force")
    assert result.code == 0, result.err
    assert _complete(project.output, 3)
    assert list(project.root.glob(".repo.*staging*")) == []
    print("outcomes of the kills:", outcomes)


def test_a_second_build_waits_for_the_lock(project: Project) -> None:
    """The build reaches the lock while this test holds it (it says it waits), writes nothing meanwhile, and goes on
    when the lock is released."""
    project.write(_manifest(2))
    with RepositoryLock(project.output):
        process = subprocess.Popen([sys.executable, "-m", "compiler", "build", "--manifest", str(project.manifest),
                                    "--output", str(project.output)], cwd=ROOT, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        assert process.stdout is not None
        said = []
        for line in process.stdout:  # until it is at the lock (or has ended, which fails below)
            said.append(line)
            if "waiting for" in line:
                break
        assert "another build of" in "".join(said), "".join(said)
        assert process.poll() is None and not project.output.exists()
    rest, _ = process.communicate(timeout=120)
    assert process.returncode == 0, "".join(said) + rest
    assert _complete(project.output, 2)


@pytest.mark.slow
def test_two_builds_at_once_serialize(project: Project) -> None:
    project.write(_manifest(2))
    processes = [_build_process(project, "--force") for _ in range(2)]
    assert [p.wait(timeout=300) for p in processes] == [0, 0]
    assert _complete(project.output, 2)
    assert list(project.root.glob(".repo.*staging*")) == []
