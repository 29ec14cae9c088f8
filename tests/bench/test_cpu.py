"""Where the cores go (compiler/bench/cpu.py): each process's role from its command line, and its CPU time read
from /proc while it lives or, for the bench's own children once they ended, from getrusage."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from compiler.bench.cpu import CLIENT, REST, SERVER, STUB, CpuSpent, cpu_snapshot, role

ROLES = [  # (command line, role); the stub's is one a tritonserver 2.51 started, shortened
    (["/tmp/tritonserver-a1/backends/python/triton_python_backend_stub", "/tmp/served-x/models/embed_tokenize/1/model.py",
      "triton_python_backend_shm_region_52", "1048576", "1048576", "29713"], "embed_tokenize (Python stub)"),
    (["/venv/lib/python3.11/site-packages/pytriton/tritonserver/bin/tritonserver", "--model-repository=/r"], SERVER),
    (["/venv/lib/python3.11/site-packages/tritonclient/bin/perf_analyzer", "-m", "embed"], CLIENT),
    (["/venv/bin/python", "-m", "compiler", "bench"], REST),
    (["python", "-c", "print('perf_analyzer tritonserver')"], REST),  # a name in an argument is not the program
    ([STUB], STUB),  # a stub without its model.py
    ([], REST),  # a kernel thread
]


@pytest.mark.parametrize(("argv", "expected"), ROLES)
def test_each_process_gets_its_role_from_its_program_and_model(argv: list[str], expected: str) -> None:
    assert role(argv) == expected


#: Burns `seconds` of its own CPU time, says so, then lives on until its stdin closes.
BURN = """
import sys, time
seconds = float(sys.argv[-1])
while time.process_time() < seconds:
    pass
print("burnt", flush=True)
sys.stdin.read()
"""

needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads Linux's /proc")


def _program(tmp_path: Path, name: str) -> Path:
    """This Python under the name `name`: a process's role comes from its program's name."""
    link = tmp_path / name
    link.symlink_to(sys.executable)
    return link


@needs_proc
def test_a_live_process_s_cpu_time_counts_for_its_role_when_the_server_started_it(tmp_path: Path) -> None:
    import os

    model = f"probe_{uuid.uuid4().hex[:8]}"  # a role no other process on the machine has
    script = tmp_path / "models" / model / "1" / "model.py"
    script.parent.mkdir(parents=True)
    script.write_text(BURN)
    server, elsewhere = os.getpid(), 1  # the stub's parent is this process, as a stub's is its tritonserver
    before, before_elsewhere = cpu_snapshot(server), cpu_snapshot(elsewhere)
    child = subprocess.Popen([str(_program(tmp_path, STUB)), str(script), "0.5"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "burnt"
        spent, spent_elsewhere = cpu_snapshot(server) - before, cpu_snapshot(elsewhere) - before_elsewhere
    finally:
        child.communicate("")
    assert 0.45 <= spent.seconds.get(f"{model} (Python stub)", 0.0) < 5.0  # 0.5 s burnt (in whole ticks), and its start
    assert spent.wall_s > 0 and spent.cores >= 1
    # a stub another server started is the rest of the machine
    assert f"{model} (Python stub)" not in spent_elsewhere.seconds and spent_elsewhere.seconds.get(REST, 0.0) >= 0.45


@needs_proc
def test_the_benchs_children_that_ended_count_as_perf_analyzer(tmp_path: Path) -> None:
    before = cpu_snapshot()
    subprocess.run([str(_program(tmp_path, "perf_analyzer")), "-c", BURN, "0.4"], input="", check=True,
                   capture_output=True)
    spent = cpu_snapshot() - before
    assert spent.seconds.get(CLIENT, 0.0) >= 0.39


def test_shares_are_cores_kept_busy_over_the_wall_time() -> None:
    spent = CpuSpent({SERVER: 15.0, CLIENT: 1.0, REST: 2.0}, wall_s=10.0, cores=2)
    assert spent.core_share(SERVER) == 1.5 and spent.core_share("absent") == 0.0
    assert spent.idle == pytest.approx(0.2)  # 2 cores x 10 s, 18 s used
    assert (spent + spent).core_share(SERVER) == 1.5


#: Starts the command in its arguments and, told to on its stdin, ends it and reaps it, then lives on until its stdin
#: closes: the parent of a perf_analyzer the bench did not start, as another test worker is.
STARTER = """
import subprocess, sys
child = subprocess.Popen(sys.argv[1:], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
print(child.stdout.readline().strip(), flush=True)
sys.stdin.readline()
child.communicate("")
print("reaped", flush=True)
sys.stdin.read()
"""


@needs_proc
def test_a_perf_analyzer_the_bench_did_not_start_is_the_rest_and_its_end_takes_nothing_from_anyone(
        tmp_path: Path) -> None:
    """Another worker's perf_analyzer, live at the first snapshot and ended by the second, must not take its time out
    of what the others spent between them (before, the bench's perf_analyzer or the rest came out at 0 s)."""
    client = str(_program(tmp_path, "perf_analyzer"))
    start = cpu_snapshot()
    starter = subprocess.Popen([sys.executable, "-c", STARTER, client, "-c", BURN, "0.5"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    assert starter.stdin is not None and starter.stdout is not None
    other = None
    try:
        assert starter.stdout.readline().strip() == "burnt"
        before = cpu_snapshot()
        subprocess.run([client, "-c", BURN, "0.2"], input="", check=True, capture_output=True)  # the bench's own
        other = subprocess.Popen([sys.executable, "-c", BURN, "0.3"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 text=True)  # the rest, live at the last snapshot
        assert other.stdout is not None and other.stdout.readline().strip() == "burnt"
        starter.stdin.write("end\n")
        starter.stdin.flush()
        assert starter.stdout.readline().strip() == "reaped"  # the foreign perf_analyzer has ended, and is gone
        spent = cpu_snapshot() - before
    finally:
        starter.communicate("")
        if other is not None:
            other.communicate("")
    lived = before - start
    assert lived.seconds.get(REST, 0.0) >= 0.45 and lived.seconds.get(CLIENT, 0.0) < 0.45
    assert 0.19 <= spent.seconds.get(CLIENT, 0.0) < 0.45 and spent.seconds.get(REST, 0.0) >= 0.29
