"""Closed-loop load: C client threads, each sending one request after another for a while."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Measurement:
    label: str
    concurrency: int
    samples_per_request: int
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0

    @property
    def throughput(self) -> float:
        """Samples per second."""
        return len(self.latencies_ms) * self.samples_per_request / self.seconds if self.seconds else 0.0

    def absorb(self, other: Measurement) -> None:
        """Add another window of the same cell: throughput and percentiles then cover both windows."""
        self.seconds += other.seconds
        self.latencies_ms += other.latencies_ms
        self.errors += other.errors

    def percentile(self, q: float) -> float:
        data = sorted(self.latencies_ms)
        return data[min(len(data) - 1, int(q * len(data)))] if data else float("nan")


def closed_loop(label: str, make_caller: Callable[[], Callable[[], Any]], concurrency: int, seconds: float,
                samples_per_request: int = 1, warmup: int = 3, tick: Callable[[], None] = lambda: None) -> Measurement:
    """Each thread gets its own caller (its own client); latency is per call."""
    result = Measurement(label, concurrency, samples_per_request)
    lock = threading.Lock()
    start_gate = threading.Barrier(concurrency + 1)
    stop_at = [0.0]

    failed: list[BaseException] = []

    def worker() -> None:
        try:
            call = make_caller()
            for _ in range(warmup):
                call()
        except BaseException as err:  # no caller, or its warm-up refused: the window cannot start
            failed.append(err)
            start_gate.abort()
            return
        try:
            start_gate.wait()
        except threading.BrokenBarrierError:
            return
        while time.perf_counter() < stop_at[0]:
            begun = time.perf_counter()
            try:
                call()
            except Exception:
                with lock:
                    result.errors += 1
                continue
            with lock:
                result.latencies_ms.append((time.perf_counter() - begun) * 1000)
            tick()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    stop_at[0] = time.perf_counter() + 3600  # until the gate opens
    try:
        start_gate.wait()
    except threading.BrokenBarrierError:
        for thread in threads:
            thread.join()
        raise failed[0] from None
    began = time.perf_counter()
    stop_at[0] = began + seconds
    for thread in threads:
        thread.join()
    result.seconds = time.perf_counter() - began
    return result
