"""`serve`: run a repository in the foreground until Ctrl-C or SIGTERM.

The server is ours: it stops when we stop (process group + parent-death
signal), and when it dies on its own we say so with its log.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from compiler.errors import Problem, ServerError
from compiler.server.docker import docker_command
from compiler.server.ports import Ports
from compiler.server.session import embedded_server, status_table

Echo = Callable[[str], None]


class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop()


def serve_embedded(repository: Path, ports: Ports, host: str, echo: Echo,
                   until: Callable[[], bool] = lambda: False, variant: str | None = None) -> None:
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    try:
        with embedded_server(repository, ports=ports, host=host, variant=variant) as (server, models):
            echo(status_table(server.model_states()))
            if variant:
                for model in models:
                    echo(f"config: {model.name}: {model.config_file}")
            for model in models:
                if model.note:
                    echo(f"note: {model.name}: {model.note}")
            echo(f"serving {repository} at http://{host}:{ports.http} (gRPC {host}:{ports.grpc}, "
                 f"metrics http://{host}:{ports.metrics}/metrics); Ctrl-C stops")
            try:
                while server.running() and not until():
                    time.sleep(0.5)
            except (KeyboardInterrupt, _Stop):
                echo("stopping tritonserver")
                return
            if not server.running():
                raise ServerError(Problem("tritonserver exited unexpectedly\n"
                                          + "\n".join(server.log_lines_for(None, 30))))
    finally:
        signal.signal(signal.SIGTERM, previous)


def serve_docker(repository: Path, ports: Ports, host: str, release: str, echo: Echo,
                 variant: str | None = None) -> int:
    name = f"triton-compiler-{os.getpid()}"
    command = docker_command(repository, ports, release, name, host, variant)
    echo("$ " + " ".join(command))
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    process = subprocess.Popen(command, start_new_session=True)
    try:
        return process.wait()
    except (KeyboardInterrupt, _Stop):
        subprocess.run(["docker", "stop", name], capture_output=True)
        return process.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
