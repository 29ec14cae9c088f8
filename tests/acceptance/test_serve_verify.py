"""serve and verify against the real embedded tritonserver."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from compiler.server.docker import choose_engine, docker_command
from compiler.server.ports import Ports
from compiler.verify import verify
from tests.helpers import ROOT, Project, run_cli, run_subprocess, tree_digest

pytestmark = pytest.mark.tritonserver

MANIFEST = """
models:
  - name: bert_like
    source: {python: "tiny_models:bert_like"}
    max_batch_size: 8
    dynamic_batching: {max_queue_delay_microseconds: 5000}
    instance_group: [{kind: KIND_GPU, count: 1}]
    inputs:
      - {name: attention_mask, dtype: INT64, dims: [-1], example: {shape: [5], high: 2}}
      - {name: input_ids, dtype: INT64, dims: [-1], example: {shape: [5], high: 100}}
      - {name: token_type_ids, dtype: INT64, dims: [-1], example: {shape: [5], high: 2}}
  - name: affine
    source: {python: "tiny_models:affine"}
    inputs: [{name: x, dtype: FP32, dims: [4]}]
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    built = Project.at(tmp_path_factory.mktemp("serve")).built(MANIFEST)
    return built.manifest, built.output


def _tritonservers_on(port: int) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if "tritonserver" in cmdline and f"--http-port={port}" in cmdline:
                found.append(int(proc.name))
    return found


def test_verify_passes_and_serves_kind_gpu_on_cpu_without_touching_files(built: tuple[Path, Path]) -> None:
    """verify finds the manifest from the repository (its build record): run from this repository's root, where the
    committed models.yaml (resnet, bert) would be the wrong one."""
    _, repo = built
    before = tree_digest(repo)
    result = run_cli("verify", "--repository", str(repo))
    assert result.code == 0, result.out + result.err
    assert "bert_like" in result.out and "resnet" not in result.out
    assert "served as KIND_CPU (no GPU here)" in result.out
    assert "concurrent requests" in result.out and " 0 failed" in result.out
    # what the concurrency check showed about batching is said, with the server's own counts: merged in fewer
    # executions than requests, or not merged in any of 3 bursts (a request shed by the queue policy on a busy
    # machine is in no count, and is said)
    row = next(line for line in result.out.splitlines() if "concurrent requests" in line and "merged" in line)
    merged = re.search(r"merged by the dynamic batcher: ([1-8]) requests in (\d+) executions", row)
    unmerged = re.search(r"not merged: .*requests in .*executions in (each of )?3 bursts, so this shows the answers, "
                         r"not batching", row)
    assert (merged and int(merged[2]) < int(merged[1])) or unmerged, row
    assert tree_digest(repo) == before


def test_verify_fails_when_the_served_file_answers_otherwise(built: tuple[Path, Path], tmp_path: Path) -> None:
    """The model file NVIDIA's backend runs is changed after the build (one weight nudged): verify's comparison with
    eager PyTorch catches it for that model alone."""
    import torch

    manifest, repo = built
    tampered = tmp_path / "repo"
    shutil.copytree(repo, tampered, symlinks=True)
    path = tampered / "bert_like" / "1" / "model.pt"
    built_file = torch.jit.load(str(path))

    class Nudged(torch.nn.Module):  # the same forward() arguments, so that NVIDIA's backend binds it as before
        def __init__(self) -> None:
            super().__init__()
            self.built = built_file

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    token_type_ids: torch.Tensor) -> torch.Tensor:
            return self.built(input_ids, attention_mask, token_type_ids) + 1

    ids = torch.ones(1, 5, dtype=torch.long)
    torch.jit.trace(Nudged(), (ids, ids, ids)).save(str(path))
    checks = verify(manifest, tampered)
    failed = [c for c in checks if not c.ok]
    assert failed and all(c.model == "bert_like" for c in failed)
    assert any("values differ" in c.detail for c in failed)
    assert all(c.ok for c in checks if c.model == "affine")


def test_verify_refuses_a_stale_repository(built: tuple[Path, Path], tmp_path: Path) -> None:
    manifest, repo = built
    edited = Project.at(tmp_path).manifest
    edited.write_text(manifest.read_text().replace("max_queue_delay_microseconds: 5000", "max_queue_delay_microseconds: 10"))
    result = run_cli("verify", "--manifest", str(edited), "--repository", str(repo))
    assert result.code == 1
    assert "stale" in result.out and "run `make repo`" in result.out


def _start_serve(repo: Path, ports: Ports, manifest: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "compiler", "serve", "--repository", str(repo), "--manifest", str(manifest),
         "--engine", "embedded", "--http-port", str(ports.http), "--grpc-port", str(ports.grpc),
         "--metrics-port", str(ports.metrics)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)


def _wait_for(process: subprocess.Popen[str], text: str, timeout: float = 300) -> str:
    seen = ""
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        seen += line
        if text in line:
            return seen
    raise AssertionError(f"never saw {text!r}:\n{seen}")


def _none_left_on(port: int, timeout: float = 30) -> list[int]:
    """The tritonservers still on `port` once none is, or `timeout` has passed (a stopped one takes a moment)."""
    deadline = time.monotonic() + timeout
    while _tritonservers_on(port) and time.monotonic() < deadline:
        time.sleep(0.1)
    return _tritonservers_on(port)


def _exit_code(process: subprocess.Popen[str], timeout: float) -> int:
    """A serve that has not ended in time fails the test with what it printed and where each thread is (serve
    dumps its stacks on SIGUSR1)."""
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGUSR1)
        time.sleep(2)
        process.kill()
        output, _ = process.communicate(timeout=30)
        raise AssertionError(f"serve had not ended {timeout:.0f} s after SIGTERM:\n{output}") from None


def test_serve_prints_the_table_and_stops_on_sigterm(built: tuple[Path, Path]) -> None:
    manifest, repo = built
    ports = Ports.free()
    process = _start_serve(repo, ports, manifest)
    try:
        seen = _wait_for(process, "Ctrl-C stops")
        assert "| bert_like | 1       | READY  |" in seen and "| affine    | 1       | READY  |" in seen
        assert "engine: embedded" in seen
        with urllib.request.urlopen(f"http://127.0.0.1:{ports.http}/v2/health/ready", timeout=5) as answer:
            assert answer.status == 200
        assert _tritonservers_on(ports.http)
        process.send_signal(signal.SIGTERM)
        assert _exit_code(process, timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert _none_left_on(ports.http) == []


def test_sigterm_while_the_server_starts_is_a_clean_stop(built: tuple[Path, Path]) -> None:
    """SIGTERM can land anywhere in the main thread, not only in the serving loop: here while models load."""
    manifest, repo = built
    ports = Ports.free()
    process = _start_serve(repo, ports, manifest)
    try:
        deadline = time.monotonic() + 60
        while not _tritonservers_on(ports.http) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _tritonservers_on(ports.http), "tritonserver never started"
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
        assert process.returncode == 0, output
        assert "internal error" not in output and "stopped" in output
    finally:
        if process.poll() is None:
            process.kill()
    assert _none_left_on(ports.http) == []


def test_tritonserver_dies_with_a_killed_serve(built: tuple[Path, Path]) -> None:
    manifest, repo = built
    ports = Ports.free()
    process = _start_serve(repo, ports, manifest)
    _wait_for(process, "Ctrl-C stops")
    assert _tritonservers_on(ports.http)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert _none_left_on(ports.http) == []


def test_a_killed_tritonserver_is_serving_again_and_serve_says_why(built: tuple[Path, Path]) -> None:
    """serve supervises tritonserver: killed from outside, it is named (signal 9), started again on the same ports
    with the same models, the READY table printed again with the restart counted, and requests answered."""
    manifest, repo = built
    ports = Ports.free()
    process = _start_serve(repo, ports, manifest)
    try:
        _wait_for(process, "Ctrl-C stops")
        [pid] = _tritonservers_on(ports.http)
        os.kill(pid, signal.SIGKILL)
        seen = _wait_for(process, "tritonserver restarts: 1", timeout=180)
        assert "(signal 9 (SIGKILL)); restarting; its last log lines:" in seen and "serving again after" in seen
        assert "| bert_like | 1       | READY  |" in seen.split("serving again after")[1]  # the table again
        [again] = _tritonservers_on(ports.http)
        assert again != pid
        with urllib.request.urlopen(f"http://127.0.0.1:{ports.http}/v2/models/affine/ready", timeout=5) as answer:
            assert answer.status == 200
        process.send_signal(signal.SIGTERM)
        assert _exit_code(process, timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert _none_left_on(ports.http) == []


def test_serve_names_a_model_that_fails_to_load(built: tuple[Path, Path], tmp_path: Path) -> None:
    manifest, repo = built
    copy = tmp_path / "repo"
    shutil.copytree(repo, copy)
    (copy / "affine" / "1" / "model.pt").unlink()
    ports = Ports.free()
    result = run_subprocess("-m", "compiler", "serve", "--repository", str(copy), "--manifest", str(manifest),
                            "--engine", "embedded", "--http-port", str(ports.http), "--grpc-port", str(ports.grpc),
                            "--metrics-port", str(ports.metrics))
    assert result.code == 1
    assert "model 'affine'" in result.err and "failed to load" in result.err
    assert "unable to find" in result.err and "model.pt' for model instance 'affine'" in result.err  # the server's words


@pytest.mark.parametrize(("engine", "gpu", "chosen", "why"), [
    (True, True, "docker", "a Docker engine and an NVIDIA GPU are present"),
    (True, False, "embedded", "no NVIDIA GPU: using the embedded"),
    (False, True, "embedded", "no Docker engine: using the embedded"),
    (False, False, "embedded", "no Docker engine and no NVIDIA GPU"),
])
def test_auto_engine_needs_both_a_docker_engine_and_a_gpu(engine: bool, gpu: bool, chosen: str, why: str) -> None:
    got, reason = choose_engine("auto", engine_probe=lambda: engine, gpu_probe=lambda: gpu)
    assert got == chosen and why in reason
    assert choose_engine("docker", lambda: False, lambda: False) == ("docker", "--engine docker")


def test_serve_with_docker_that_cannot_run_exits_with_a_documented_code(built: tuple[Path, Path]) -> None:
    """Not docker's own status (125 without an engine, 127 without the command): 1, with what happened."""
    from compiler.server.docker import docker_engine_available

    if docker_engine_available():
        pytest.skip("a Docker engine is here: the container would start")
    manifest, repo = built
    ports = Ports.free()
    result = run_cli("serve", "--engine", "docker", "--repository", str(repo), "--manifest", str(manifest),
                     "--http-port", str(ports.http), "--grpc-port", str(ports.grpc), "--metrics-port",
                     str(ports.metrics))
    assert result.code == 1, (result.out, result.err)
    assert "exited with status" in result.err or "no `docker` command" in result.out + result.err


def test_auto_engine_on_this_machine_and_the_docker_command_uses_the_release() -> None:
    from compiler.server.docker import docker_engine_available, nvidia_gpu_present

    engine, _ = choose_engine("auto")
    assert engine == ("docker" if docker_engine_available() and nvidia_gpu_present() else "embedded")
    command = docker_command(Path("Triton/models"), Ports(8000, 8001, 8002), "24.10", "t")
    assert "nvcr.io/nvidia/tritonserver:24.10-py3" in command and "--gpus=all" in command
    assert f"{Path('Triton/models').resolve()}:/models:ro" in command

