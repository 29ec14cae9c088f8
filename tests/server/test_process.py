"""The tritonserver process wrapper, without starting a server: its log filter and its temporary folder."""

from __future__ import annotations

from pathlib import Path

from compiler.server.process import TritonProcess

LOG = """\
I1125 13:00:00.000 1 server.cc:1] Started
W1125 13:00:00.100 1 pinned_memory_manager.cc:1] Unable to allocate pinned system memory, pinned memory pool will \
not be available: CUDA driver version is insufficient for CUDA runtime version
I1125 13:00:00.200 1 model_lifecycle.cc:1] loading: other:1
I1125 13:00:00.300 1 model_lifecycle.cc:1] loading: bert:1
E1125 13:00:00.400 1 model_lifecycle.cc:1] failed to load 'bert' version 1: Invalid argument: no model file
I1125 13:00:00.500 1 model_lifecycle.cc:1] successfully loaded 'other'
"""


def test_the_log_lines_for_a_model_are_its_own_and_the_errors_without_gpu_noise(tmp_path: Path) -> None:
    server = TritonProcess(tmp_path)
    server.log_path.write_text(LOG)
    lines = server.log_lines_for("bert")
    assert lines == ["I1125 13:00:00.300 1 model_lifecycle.cc:1] loading: bert:1",
                     "E1125 13:00:00.400 1 model_lifecycle.cc:1] failed to load 'bert' version 1: Invalid argument: "
                     "no model file"]
    everything = server.log_lines_for(None)
    assert len(everything) == 5 and not any("CUDA driver" in line for line in everything)
    assert server.log_lines_for(None, limit=2) == everything[-2:]
    server.stop()


def test_stop_removes_the_temporary_folder_but_a_log_a_failure_named(tmp_path: Path) -> None:
    quiet = TritonProcess(tmp_path)
    (quiet.log_path.parent / "backends").mkdir()
    quiet.stop()
    assert not quiet.log_path.parent.exists()

    failed = TritonProcess(tmp_path)
    failed.log_path.write_text(LOG)
    (failed.log_path.parent / "backends" / "pytorch").mkdir(parents=True)
    problem = failed._failure("model 'bert' failed to load", model="bert")
    assert str(failed.log_path) in problem.message
    failed.stop()
    assert failed.log_path.is_file() and list(failed.log_path.parent.iterdir()) == [failed.log_path]


def test_a_port_in_use_is_named_with_the_flag_that_moves_it(tmp_path: Path) -> None:
    import socket

    import pytest

    from compiler.errors import ServerError
    from compiler.server.ports import Ports

    taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    free = Ports.free()
    try:
        server = TritonProcess(tmp_path, ports=Ports(free.http, port, free.metrics))
        with pytest.raises(ServerError) as info:
            server.start()
        text = info.value.render()
        assert f"port {port} (gRPC) on 127.0.0.1 is already in use" in text and "--grpc-port N" in text
        assert "exited before it was ready" not in text and not server.running()
        server.stop()
    finally:
        taken.close()
    Ports(free.http, port, free.metrics).check_available("127.0.0.1")  # released: no error


def _child_that_sigint(server: TritonProcess, handler: str) -> None:
    """A process in server's place whose SIGINT handler is `handler`, started once it has set it. SIG_DFL is set on
    purpose too: a shell's background job (CI under nohup ... &) passes SIGINT on ignored."""
    import subprocess
    import sys

    code = f"import signal, time; signal.signal(signal.SIGINT, signal.{handler}); print('up', flush=True); " \
           "time.sleep(600)"
    server._process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, start_new_session=True)
    assert server._process.stdout is not None and server._process.stdout.readline() == b"up\n"


def test_a_server_that_ignores_sigint_is_killed_after_the_grace_and_says_so(tmp_path: Path) -> None:
    """A stuck shutdown (a Python stub that never ends) must not hold `serve` past a container's stop timeout."""
    import time

    server = TritonProcess(tmp_path)
    _child_that_sigint(server, "SIG_IGN")
    started = time.monotonic()
    assert server.stop(grace=1.0) == -9
    assert server.killed and time.monotonic() - started < 10

    polite = TritonProcess(tmp_path)
    _child_that_sigint(polite, "SIG_DFL")
    polite.stop(grace=5.0)
    assert not polite.killed
