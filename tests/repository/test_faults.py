"""A build killed at any point leaves a whole repository; builds on one output take turns."""

from __future__ import annotations

import signal
import subprocess
import sys
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


#: Where a build is killed (right after it says the line) and what the repository must then be: the old one while
#: models are still being exported into the staging folder (each takes far longer than the kill), the new one once it
#: says the repository is written.
KILLS = [("first: loading source", "old"), ("first: built in", "old"), ("second: loading source", "old"),
         ("third: loading source", "old"), (": written", "new")]


def _killed_after(project: Project, line: str) -> list[str]:
    """A build (--force), killed with SIGKILL as soon as it says `line`; what it said until then."""
    process = subprocess.Popen([sys.executable, "-m", "compiler", "build", "--manifest", str(project.manifest),
                                "--output", str(project.output), "--force"], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    said = []
    for text in process.stdout:
        said.append(text)
        if line in text:
            process.send_signal(signal.SIGKILL)
            break
    process.wait()
    return said


@pytest.mark.slow
def test_sigkill_at_each_stage_leaves_the_old_repository_or_the_new_one(project: Project) -> None:
    project.write(_manifest(2))
    assert project.build().code == 0
    old = tree_digest(project.output)
    project.write(_manifest(3))
    for line, expected in KILLS:
        said = _killed_after(project, line)
        assert any(line in text for text in said), f"the build never said {line!r}:\n{''.join(said)}"
        current = tree_digest(project.output)
        outcome = "old" if current == old else "new"
        assert outcome == expected, f"killed after {line!r}: the {outcome} repository, expected the {expected} one"
        assert _complete(project.output, 2 if outcome == "old" else 3), "a killed build left a broken repository"
        if outcome == "new":
            old = current
    result = project.build("--force")
    assert result.code == 0, result.err
    assert _complete(project.output, 3)
    assert list(project.root.glob(".repo.*staging*")) == []


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
