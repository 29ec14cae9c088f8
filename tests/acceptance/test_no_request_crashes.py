"""No request may crash a served model: AOTI packages with guards compiled in, loaded in a process of their own
(as NVIDIA's pytorch_backend runs them inside tritonserver); a server that dies anyway is started again; verify's hostile
phase over the real tritonserver."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as httpclient

from compiler.server.session import embedded_server
from tests.helpers import Project, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.tritonserver]

MANIFEST = """
triton_version: "26.11"
models:
  - name: lookup
    source: {python: "tiny_models:lookup"}
    export: aoti
    max_batch_size: 8
    inputs: [{name: "ARGS[0]", dtype: INT64, dims: [-1], example: {shape: [64], high: 50}}]
    instance_group: [{kind: KIND_CPU}]
  - name: unguarded
    source: {python: "tiny_models:lookup"}
    export: aoti
    max_batch_size: 8
    inputs: [{name: "ARGS[0]", dtype: INT64, dims: [-1], example: {shape: [64], high: 50}, guard: false}]
    instance_group: [{kind: KIND_CPU}]
  - name: cnn
    source: {python: "tiny_models:tiny_cnn"}
    export: aoti
    max_batch_size: 4
    inputs: [{name: INPUT__0, dtype: FP32, dims: [3, -1, -1], example: {shape: [3, 32, 32]}}]
    instance_group: [{kind: KIND_CPU}]
  - name: cnn_as_is
    source: {python: "tiny_models:tiny_cnn"}
    export: aoti
    max_batch_size: 4
    inputs: [{name: INPUT__0, dtype: FP32, dims: [3, -1, -1], example: {shape: [3, 32, 32]}, guard: {finite: false}}]
    instance_group: [{kind: KIND_CPU}]
"""

#: Runs a package in a fresh process, as tritonserver's would, on each case in turn: prints, per case, what it answered
#: or raised (a case after a raised one shows that the process lives on and still answers).
RUN = textwrap.dedent("""
    import sys, torch
    from compiler.backend.pytorch.pt2_names import load_package  # as NVIDIA's backend opens it
    package = load_package(sys.argv[1])
    for case in sys.argv[2:]:
        if case == "nan":
            x = torch.rand(1, 3, 32, 32); x[0, 0, 5, 5] = float("nan"); inputs = [x]
        else:
            batch, length, value = (int(v) for v in case.split(","))
            ids = torch.ones(batch, length, dtype=torch.long)
            if length:
                ids[-1, length // 2] = value
            inputs = [ids]
        try:
            print(case, "answered", [tuple(t.shape) for t in package.run(inputs)], flush=True)
        except Exception as err:
            print(case, "raised", str(err).strip().splitlines()[0], flush=True)
""")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, str]:
    project = Project.at(tmp_path_factory.mktemp("guards"))
    project.write(MANIFEST)
    result = project.build()
    assert result.code == 0, result.err
    return project, result.out + result.err


def _run(package: Path, *cases: str, checks: bool = False) -> subprocess.CompletedProcess[str]:
    """One process (importing torch costs about 2 CPU-s) for all the cases; the output has a line per case."""
    env = {"AOTI_RUNTIME_CHECK_INPUTS": "1"} if checks else {}
    import os

    return subprocess.run([sys.executable, "-c", RUN, str(package), *cases], capture_output=True, text=True,
                          timeout=300, env={**{k: v for k, v in os.environ.items() if k != "AOTI_RUNTIME_CHECK_INPUTS"},
                                            **env})


def test_an_out_of_vocabulary_id_raises_and_the_process_lives(built: tuple[Project, str]) -> None:
    project, _ = built
    guarded = _run(project.output / "lookup" / "1" / "model.pt2", "8,4000,999999", "8,4000,-1", "8,4000,7")
    assert guarded.returncode == 0, guarded.stderr
    said = guarded.stdout.splitlines()
    assert said[0] == "8,4000,999999 raised invalid request: input 'ARGS[0]' holds a value outside [0, 50) " \
        "(an embedding of 50 rows)"
    assert said[1].startswith("8,4000,-1 raised invalid request")
    assert said[2] == "8,4000,7 answered [(8, 4000, 3)]"  # the same process, after two refusals
    # the same model without its guard: the compiled kernel's bounds check aborts the whole process
    unguarded = _run(project.output / "unguarded" / "1" / "model.pt2", "8,4000,999999")
    assert unguarded.returncode != 0 and "answered" not in unguarded.stdout


def test_batch_one_passes_the_packages_input_checks(built: tuple[Project, str]) -> None:
    project, _ = built
    package = project.output / "lookup" / "1" / "model.pt2"
    said = _run(package, "1,7,3", "1,1,3", "1,0,3", "9,7,3", checks=True).stdout.splitlines()
    assert said[:2] == ["1,7,3 answered [(1, 7, 3)]", "1,1,3 answered [(1, 1, 3)]"]
    # an empty dim: refused by AOTInductor's own input checks, written from 1 (export/aoti.py, at_least_one)
    assert said[2] == "1,0,3 raised input_handles[0]: dim value is too small at 1, expected it to be >= 1, but got: 0"
    assert said[3].startswith("9,7,3 raised")  # above max_batch_size
    record = json.loads((project.output / "lookup" / "build.json").read_text())
    assert record["guards"]["inputs"][0]["sizes"][0] == [0, 1, 8, "batch dim"]


def test_nan_is_refused_and_a_package_that_serves_it_says_where_it_differs(built: tuple[Project, str]) -> None:
    project, said = built
    refused = _run(project.output / "cnn" / "1" / "model.pt2", "nan")
    assert "raised invalid request: input 'INPUT__0' holds NaN or Inf" in refused.stdout
    assert "answered" in _run(project.output / "cnn_as_is" / "1" / "model.pt2", "nan").stdout
    # eager answers NaN where the package (relu and max pooling compiled) answers finite numbers: said at build
    assert "INPUT__0: NaN: the export's answer differs from eager PyTorch's" in said


def test_an_unguarded_package_that_aborts_ends_tritonserver_and_the_supervisor_brings_it_back(
        built: tuple[Project, str]) -> None:
    """What the guards are for: NVIDIA's backend runs the package inside tritonserver, so the compiled kernel's bounds
    check, which aborts its process, ends the whole server (the emulated backend lost one stub). The supervisor says
    why, starts it again on the same ports with the same models, and the next request is answered."""
    project, _ = built
    said: list[str] = []
    with embedded_server(project.output, only=["unguarded"], echo=said.append) as (server, _):
        client = httpclient.InferenceServerClient(server.http_url, network_timeout=120)

        def send(value: int) -> object:
            ids = np.ones((8, 4000), dtype=np.int64)
            ids[3, 1000] = value
            item = httpclient.InferInput("ARGS[0]", list(ids.shape), "INT64")
            item.set_data_from_numpy(ids)
            try:
                return client.infer("unguarded", [item]).as_numpy("RESULT").shape
            except Exception as err:
                return err

        pid = server.pid
        assert send(5) == (8, 4000, 3)
        assert isinstance(send(999999), Exception)
        deadline = time.monotonic() + 120
        while not (server.supervisor.exits and server.supervisor.exits[0].restarted) and time.monotonic() < deadline:
            time.sleep(0.2)
        exit_ = server.supervisor.exits[0]
        assert exit_.restarted and server.pid != pid, exit_.line()
        assert exit_.why.startswith("signal ") and exit_.log_tail  # SIGABRT or SIGSEGV, and what the log said
        assert send(5) == (8, 4000, 3)  # the same ports, the model loaded again
        assert server.supervisor.summary().startswith("tritonserver restarts: 1 (last: tritonserver exited at ")
    assert any(line.startswith("tritonserver exited at ") and "its last log lines:" in line for line in said)
    assert any(line.endswith("s") and "serving again after" in line for line in said)


def test_a_model_loaded_after_the_start_is_loaded_again_by_the_restart(built: tuple[Project, str]) -> None:
    """The bench loads an empty twin beside each model, and check loads cases, after the server started: a server
    restarted with only the models it started with answered the next request for them 400 (a full make bench ended
    so, on a signal 11 in NVIDIA's AOTI backend)."""
    project, _ = built
    with embedded_server(project.output, only=["cnn"]) as (server, _):
        server.load_model("lookup")
        pid = server.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 120
        while not (server.supervisor.exits and server.supervisor.exits[0].restarted):
            assert time.monotonic() < deadline, [e.line() for e in server.supervisor.exits]
            time.sleep(0.1)
        states = {s.name: s.state for s in server.model_states()}
        assert states.get("lookup") == "READY" and states.get("cnn") == "READY", states


def test_a_server_that_keeps_exiting_is_given_up_on(built: tuple[Project, str]) -> None:
    """Past its limit of restarts in its window the supervisor stops restarting, and says why."""
    project, _ = built
    with embedded_server(project.output, only=["cnn"]) as (server, _):
        supervisor = server.supervisor
        supervisor.limit, supervisor.backoff = 1, (0.1,)
        for number in (1, 2):
            assert server.pid is not None
            os.kill(server.pid, signal.SIGKILL)
            deadline = time.monotonic() + 120
            while len(supervisor.exits) < number or (number == 1 and not supervisor.exits[0].restarted):
                assert time.monotonic() < deadline, [e.line() for e in supervisor.exits]
                time.sleep(0.1)
        assert supervisor.exits[0].restarted and supervisor.exits[0].why == "signal 9 (SIGKILL)"
        deadline = time.monotonic() + 30
        while supervisor.gave_up is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert supervisor.gave_up == "2 exits in 600 s, more than the 1 restarts allowed"
        assert not supervisor.exits[1].restarted and not server.running()


def test_verify_sends_the_hostile_set_and_every_model_lives(built: tuple[Project, str]) -> None:
    project, _ = built
    result = run_cli("verify", "--repository", str(project.output))
    assert result.code == 0, result.out
    rows = [line for line in result.out.splitlines() if " hostile requests " in line]
    assert len(rows) == 8 and all(" ok " in row for row in rows)
    assert any(row.startswith("lookup ") and "answered as documented" in row for row in rows)
    assert sum(" server lived " in line and " ok " in line for line in result.out.splitlines()) == 4
