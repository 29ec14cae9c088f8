"""`bench` end to end on tiny models (short cells): it measures, writes the report and the plot."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.bench import run_bench, write_report
from compiler.bench.load import closed_loop
from tests.helpers import Project

pytestmark = pytest.mark.tritonserver

MANIFEST = """
models:
  - name: affine
    source: {python: "tiny_models:affine"}
    max_batch_size: 8
    dynamic_batching: {max_queue_delay_microseconds: 100}
    inputs: [{name: x, dtype: FP32, dims: [4]}]
"""


def test_closed_loop_counts_examples_per_second() -> None:
    measurement = closed_loop("sleep", lambda: (lambda: __import__("time").sleep(0.01)), concurrency=2, seconds=0.5,
                              samples_per_request=3)
    assert measurement.errors == 0 and len(measurement.latencies_ms) >= 20
    assert 2 * 3 * 50 * 0.5 < measurement.throughput < 2 * 3 * 100 * 1.1  # 2 threads x 3 examples per ~10 ms
    assert 9 < measurement.percentile(0.5) < 50


def test_windows_of_one_cell_add_up() -> None:
    first = closed_loop("w", lambda: (lambda: __import__("time").sleep(0.01)), concurrency=1, seconds=0.3)
    second = closed_loop("w", lambda: (lambda: __import__("time").sleep(0.03)), concurrency=1, seconds=0.3)
    count = len(first.latencies_ms) + len(second.latencies_ms)
    first.absorb(second)
    assert len(first.latencies_ms) == count and 0.6 <= first.seconds < 0.8
    assert 10 < first.percentile(0.5) < 40 and first.percentile(0.99) >= 30  # both windows' latencies
    assert count / 0.8 < first.throughput <= count / 0.6


def test_bench_writes_a_report_and_a_plot(tmp_path: Path) -> None:
    built = Project.at(tmp_path).built(MANIFEST)
    results = run_bench(built.manifest, built.output, seconds=0.5, concurrencies=(1, 4), rounds=2,
                        with_pytriton=False, with_build=True)
    bench = results.models[0]
    assert [m.label for m in bench.served] == ["served http c1", "served http c4", "served grpc c1", "served grpc c4"]
    assert all(m.errors == 0 and m.throughput > 0 for m in bench.served)
    assert bench.eager_latency is not None
    assert all(m.seconds >= 2 * 0.5 for m in [*bench.served, bench.eager_latency])  # one window per round, added up
    assert bench.eager_batched is not None and bench.eager_batched.samples_per_request == 8
    assert results.build is not None and results.build.noop_build_s < results.build.full_build_s
    markdown, plot = write_report(results, tmp_path / "docs")
    text = markdown.read_text()
    assert "| served grpc c4 | 4 |" in text and "full build / raw trace+save" in text and "2 interleaved rounds" in text
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_pytriton_serves_the_same_model_for_the_comparison(tmp_path: Path) -> None:
    """The PyTriton side of `bench`: same model.pt, its own tritonserver, answers without errors."""
    built = Project.at(tmp_path).built(MANIFEST)
    results = run_bench(built.manifest, built.output, seconds=0.5, concurrencies=(1, 2), rounds=1,
                        with_pytriton=True, with_build=False)
    bench = results.models[0]
    assert bench.pytriton_error is None, bench.pytriton_error
    assert bench.pytriton_c1 is not None and bench.pytriton is not None
    assert [bench.pytriton_c1.label, bench.pytriton.label] == ["pytriton http c1", "pytriton http c2"]
    assert bench.pytriton.errors == 0 and bench.pytriton.throughput > 0
    text = write_report(results, tmp_path / "docs")[0].read_text()
    assert "| pytriton http c2 | 2 |" in text and "PYTRITON_NO_TENSORSTORE=1" in text
