"""The closed loop the bench's in-process rows run: what it counts, and how windows of one cell add up (no server:
the fast tier runs these)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

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


def test_a_caller_that_cannot_be_made_fails_the_window_instead_of_hanging_it() -> None:
    """One thread's client cannot be made (the server refuses it, say): the others were waiting at the start gate;
    the window ends at once with that thread's error."""
    made = [0]

    def make() -> Callable[[], None]:
        made[0] += 1
        if made[0] == 2:
            raise ConnectionRefusedError("no server")
        return lambda: None

    with pytest.raises(ConnectionRefusedError, match="no server"):
        closed_loop("refused", make, concurrency=3, seconds=0.2)
