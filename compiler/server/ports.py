"""The ports a server listens on: free loopback ones for a server we start ourselves, and which are taken.

A free port is only free until something binds it, and tritonserver binds its ports late: after it has loaded every
model when it starts with a repository (a minute for a large one). Two of our processes that pick ports at the same
time (parallel test workers, two `verify` runs) could be handed the same port by the kernel in that window. So each
port we hand out is also claimed: a file named after it in a folder all our processes (of one user) share, which the
others skip while it is younger than CLAIM_TTL_S. Other programs do not read the claims; TritonProcess moves to new
ports when its server finds one taken anyway.
"""

from __future__ import annotations

import errno
import os
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from compiler.errors import Problem, ServerError

CLAIM_TTL_S = 900.0  # longer than any server start we wait for (wait_ready's 600 s)


def claims_folder() -> Path:
    """Per user: another user's folder would not be ours to write in (and their servers are rarer neighbours)."""
    return Path(tempfile.gettempdir()) / f"triton-compiler-ports-{os.getuid()}"


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now and none of our processes has claimed in the last CLAIM_TTL_S; claimed here."""
    folder = claims_folder()
    folder.mkdir(exist_ok=True)
    for _ in range(1000):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
        if _claim(folder / str(port)):
            return port
    raise ServerError(Problem(f"no free port on {host} that our other processes have not claimed ({folder})",
                              hint=f"remove {folder} if no other tritonserver of ours is starting"))


def _claim(path: Path) -> bool:
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        return True
    except FileExistsError:
        try:
            if time.time() - path.stat().st_mtime < CLAIM_TTL_S:
                return False  # another of our processes picked it and its server may not have bound it yet
            os.utime(path)  # an old claim: its server has long bound the port (then bind(0) skips it) or gone
            return True
        except FileNotFoundError:
            return _claim(path)


@dataclass(frozen=True)
class Ports:
    http: int
    grpc: int
    metrics: int

    @classmethod
    def free(cls, host: str = "127.0.0.1") -> Ports:
        chosen: set[int] = set()
        while len(chosen) < 3:
            chosen.add(free_port(host))
        http, grpc, metrics = sorted(chosen)
        return cls(http, grpc, metrics)

    def labelled(self) -> list[tuple[str, str, int]]:
        """(what, its flag, port) for each port."""
        return [("HTTP", "--http-port", self.http), ("gRPC", "--grpc-port", self.grpc),
                ("metrics", "--metrics-port", self.metrics)]

    def check_available(self, host: str) -> None:
        """Raise a ServerError naming every port that something else already listens on (tritonserver would exit
        at start with a log line about it, which reads like a broken model)."""
        busy = [(what, flag, port) for what, flag, port in self.labelled() if in_use(host, port)]
        if busy:
            names = ", ".join(f"{port} ({what})" for what, _, port in busy)
            flags = " ".join(f"{flag} N" for _, flag, _ in busy)
            raise ServerError(Problem(f"port {names} on {host} is already in use; tritonserver cannot listen there",
                                      hint=f"stop what listens there, or pick other ports: {flags} (make serve "
                                           "HTTP_PORT=... GRPC_PORT=... METRICS_PORT=...); verify picks free ports "
                                           "itself"))


def in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as tritonserver binds: TIME_WAIT is no owner
        try:
            sock.bind((host, port))
        except OSError as err:
            return err.errno == errno.EADDRINUSE
    return False
