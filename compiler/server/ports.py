"""The ports a server listens on: free loopback ones for a server we start ourselves, and which are taken."""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass

from compiler.errors import Problem, ServerError


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


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
