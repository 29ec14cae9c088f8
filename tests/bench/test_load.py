"""The closed loop the bench's in-process rows run: what it counts, and how windows of one cell add up (no server:
the fast tier runs these)."""

from __future__ import annotations

from compiler.bench.load import closed_loop


def test_closed_loop_counts_examples_per_second() -> None:
    """What the loop counts (no timing goals here: those live in `make bench`): a sleep of 10 ms is never shorter."""
    measurement = closed_loop("sleep", lambda: (lambda: __import__("time").sleep(0.01)), concurrency=2, seconds=0.5,
                              samples_per_request=3)
    assert measurement.errors == 0 and measurement.latencies_ms
    assert measurement.throughput == 3 * len(measurement.latencies_ms) / measurement.seconds
    assert min(measurement.latencies_ms) >= 10 and measurement.seconds >= 0.5


def test_windows_of_one_cell_add_up() -> None:
    first = closed_loop("w", lambda: (lambda: __import__("time").sleep(0.01)), concurrency=1, seconds=0.3)
    second = closed_loop("w", lambda: (lambda: __import__("time").sleep(0.03)), concurrency=1, seconds=0.3)
    count, seconds = len(first.latencies_ms) + len(second.latencies_ms), first.seconds + second.seconds
    first.absorb(second)
    assert len(first.latencies_ms) == count and first.seconds == seconds
    assert first.throughput == count / seconds and max(first.latencies_ms) >= 30  # both windows' latencies
