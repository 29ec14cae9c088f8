"""A perf_analyzer cell that gets no report is said, not raised: one cell must not end an hour of `make bench`."""

from __future__ import annotations

from compiler.bench.runner import _failed, _PaCell
from compiler.profiling.perf_analyzer import locate


def test_a_cell_perf_analyzer_cannot_measure_is_said_and_left_out_of_later_rounds() -> None:
    cell = _PaCell("served http c1", locate(), ["perf_analyzer", "-m", "absent", "-b", "1"], "127.0.0.1:1", "http", 1,
                   0.1)
    ticks: list[int] = []
    cell.run(warmup=0, tick=lambda: ticks.append(1))
    assert cell.measurement is None and cell.error and "perf_analyzer failed" not in cell.error
    said = cell.error
    cell.run(warmup=0, tick=lambda: ticks.append(1))  # a later round: not run again
    assert cell.error == said and len(ticks) == 1
    assert _failed([cell]) == [f"served http c1: {said}"]
