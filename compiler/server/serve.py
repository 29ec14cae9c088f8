"""`serve`: run a repository in the foreground until Ctrl-C or SIGTERM.

The server is ours: it stops when we stop (process group + parent-death
signal), and when it dies on its own we say why, with its log, and start it
again (server/supervisor.py); the READY table is printed again with the
restart counted.

A stop signal can land anywhere in the main thread: while models load,
in the serving loop, or in the middle of printing the status table. So
the whole session runs inside one signal scope, and the first SIGTERM or
Ctrl-C unwinds it from wherever it is; later ones are ignored so that
the clean-up the first one started (stopping tritonserver) runs to the end.
The stop is a BaseException, as KeyboardInterrupt is, so that library code
with `except Exception` (torch's import inside gpu_available, for one) does
not swallow it; and the serving loop also checks the flag, so a stop that was
swallowed anyway still ends the session.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from compiler.compat.server_crashes import STRING_CLASSIFICATION, string_outputs
from compiler.errors import Problem, ServerError
from compiler.releases import EMBEDDED_RELEASE
from compiler.server.docker import docker_command
from compiler.server.ports import Ports
from compiler.server.process import STOP_GRACE_S, TritonProcess
from compiler.server.session import embedded_server, status_table

Echo = Callable[[str], None]


class StopSignal(BaseException):
    pass


@contextmanager
def stop_signals() -> Iterator[Callable[[], bool]]:
    """Within: the first SIGTERM or SIGINT raises StopSignal; any further one is ignored. Yields `stopped()`."""
    stopping = False

    def first_stops(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            raise StopSignal()

    previous = {number: signal.signal(number, first_stops) for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield lambda: stopping
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def serve_embedded(repository: Path, ports: Ports, host: str, echo: Echo,
                   until: Callable[[], bool] = lambda: False, variant: str | None = None) -> None:
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1` prints where a serve that hangs is
    server: TritonProcess | None = None
    with stop_signals() as stopped:
        try:
            with embedded_server(repository, ports=ports, host=host, variant=variant, echo=echo) as (server, models):
                echo(status_table(server.model_states(), server))
                if variant:
                    for model in models:
                        echo(f"config: {model.name}: {model.config_file}")
                for model in models:
                    if model.note:
                        echo(f"note: {model.name}: {model.note}")
                    for name in string_outputs(model.config):  # the embedded server is 24.10: it has the crash
                        echo(f"warning: {model.name}: output '{name}' is TYPE_STRING; "
                             f"{STRING_CLASSIFICATION.said(EMBEDDED_RELEASE)}; serve starts it again when it does")
                echo(f"serving {repository} at http://{host}:{ports.http} (gRPC {host}:{ports.grpc}, "
                     f"metrics http://{host}:{ports.metrics}/metrics); Ctrl-C stops")
                supervisor = server.supervisor
                restarts = 0
                while not until() and not stopped() and supervisor.gave_up is None:
                    time.sleep(0.5)
                    if supervisor.restarts != restarts:  # back after an exit: the table again, with the restart
                        restarts = supervisor.restarts
                        echo(status_table(server.model_states(), server))
                if stopped():
                    raise StopSignal()
                if supervisor.gave_up is not None:
                    raise ServerError(Problem(f"tritonserver exited and was not started again: {supervisor.gave_up}\n"
                                              + "\n".join(e.line() for e in supervisor.exits),
                                              hint="the log lines above each exit say why it ended"))
        except StopSignal:
            echo("tritonserver stopped")
        if server is not None and server.killed:
            echo(f"note: tritonserver had not ended {STOP_GRACE_S:.0f} s after SIGINT and was killed")


def serve_docker(repository: Path, ports: Ports, host: str, release: str, echo: Echo,
                 variant: str | None = None) -> int:
    name = f"triton-compiler-{os.getpid()}"
    command = docker_command(repository, ports, release, name, host, variant)
    echo("$ " + " ".join(command))
    process: subprocess.Popen[bytes] | None = None
    with stop_signals():
        try:
            try:
                process = subprocess.Popen(command, start_new_session=True)
            except FileNotFoundError:
                echo("error: no `docker` command on PATH")
                return 127
            return process.wait()
        except StopSignal:
            if process is None:
                return 0
            subprocess.run(["docker", "stop", name], capture_output=True)
            return process.wait()
        finally:
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
