"""A perf_analyzer cell that gets no report is said, not raised: one cell must not end an hour of `make bench`."""

from __future__ import annotations

from types import SimpleNamespace

from tritonclient.grpc import model_config_pb2 as pb

from compiler.bench.runner import _failed, _PaCell, _tuning_variants
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


def test_a_cell_whose_statistics_cannot_be_read_is_said_too() -> None:
    """A server that exited (and restarts) or a model it no longer has: the cell says so and the bench goes on."""
    cell = _PaCell("served http c1", locate(), ["perf_analyzer", "-m", "absent", "-b", "1"], "127.0.0.1:1", "http", 1,
                   0.1, stats_url="127.0.0.1:1", watched=("absent",))
    cell.run(warmup=0, tick=lambda: None)
    assert cell.measurement is None and cell.error.startswith("model 'absent': Triton's statistics: ")


def _config(preferred: list[int], delay: int) -> pb.ModelConfig:
    config = pb.ModelConfig(name="m", max_batch_size=8)
    config.dynamic_batching.preferred_batch_size.extend(preferred)
    config.dynamic_batching.max_queue_delay_microseconds = delay
    config.instance_group.add(count=1)
    return config


def test_a_config_built_to_run_one_request_at_a_time_gets_no_variant_that_merges() -> None:
    """preferred_batch_size [1] with no delay never merges; with any delay Triton's batcher merges past it once the
    oldest request waited the delay out (measured: resnet's .pt2 then ran batches of 2 to 14 on NVIDIA's backend,
    answered wrong, and tritonserver died of signal 11). The bench must not measure such a copy."""
    model = SimpleNamespace(max_batch_size=8)
    alone = _tuning_variants(model, _config([1], 0))  # type: ignore[arg-type]
    assert not [v for v in alone if "queue delay" in v or "preferred" in v]
    assert alone  # the instance and thread variants stay: they do not merge
    merging = _tuning_variants(model, _config([], 0))  # type: ignore[arg-type]
    assert {"queue delay 100 us", "queue delay 1000 us", "preferred batch 8"} <= set(merging)


def test_a_cell_perf_analyzer_ran_away_from_still_says_where_the_cores_went() -> None:
    """perf_analyzer stopped past its limit, the bench's own client measures the cell in this process: the cell's CPU
    table still has its row, the client's time in the rest (a row without it failed the pipeline bench's test on a
    busy machine)."""
    import os
    import time

    from compiler.bench.cpu import REST
    from compiler.errors import Problem
    from compiler.profiling.perf_analyzer import RanAway, Result

    class RunsAway:
        def measure(self, *args: object, **kwargs: object) -> Result:
            raise RanAway(Problem("perf_analyzer ran past 1 s and was stopped"), 1.0)

    def own(ran_away: RanAway) -> Result:  # the bench's own client, standing in: 0.3 s of this process's CPU
        began = time.process_time()
        while time.process_time() - began < 0.3:
            pass
        return Result(1, "http", 10.0, 1000, 1000, 1000, "measured by the bench's own client")

    cell = _PaCell("served http c1", RunsAway(), ["perf_analyzer"], "127.0.0.1:1", "http", 1, 0.1,  # type: ignore[arg-type]
                   server_pid=os.getpid)
    cell._own = own  # type: ignore[method-assign]
    cell.run(warmup=0, tick=lambda: None)
    assert cell.measurement is not None and cell.measurement.cpu is not None
    assert cell.measurement.cpu.seconds.get(REST, 0.0) >= 0.29
