"""Free loopback ports for a server we start ourselves."""

from __future__ import annotations

import socket
from dataclasses import dataclass


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
