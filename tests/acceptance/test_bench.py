"""`bench` end to end on tiny models (short cells): it measures, writes the report and the plot."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from compiler.bench import run_bench, write_report
from tests.helpers import Project

pytestmark = pytest.mark.tritonserver

#: perf_analyzer's window in these tests: they check what the bench measures and reports, not how fast (four windows
#: a cell, a warm-up and three, with the stability rule loosened; `make bench` measures for 6 s).
SECONDS = 0.25

MANIFEST = """
models:
  - name: affine
    source: {python: "tiny_models:affine"}
    max_batch_size: 8
    dynamic_batching: {max_queue_delay_microseconds: 100}
    inputs: [{name: x, dtype: FP32, dims: [4]}]
"""


def _row(text: str, label: str, concurrency: int) -> bool:
    """The report has the row, whether or not perf_analyzer fell back to count windows (said after the label)."""
    return re.search(rf"^\| {re.escape(label)}( \([^|]*\))? \| {concurrency} \|", text, re.MULTILINE) is not None


def test_bench_writes_a_report_and_a_plot(tmp_path: Path) -> None:
    built = Project.at(tmp_path).built(MANIFEST)
    results = run_bench(built.manifest, built.output, seconds=SECONDS, concurrencies=(1, 4), rounds=2,
                        with_pytriton=False, with_build=True, with_profile=False)  # Model Analyzer: its own test
    bench = results.models[0]
    assert [m.label for m in bench.served] == ["served http c1", "served http c4", "served grpc c1", "served grpc c4"]
    assert all(len(m.results) == 2 and m.throughput > 0 for m in bench.served)  # perf_analyzer, once per round
    assert all(m.results[0].concurrency == m.concurrency for m in bench.served)
    assert bench.eager_latency is not None and bench.eager_latency.seconds >= 2 * SECONDS  # windows added up
    assert bench.torchscript == []  # a TorchScript manifest has no twin
    assert bench.eager_batched is not None and bench.eager_batched.samples_per_request == 8
    # the serving limit: the built file called in-process, at batch 1 and at the batch the server forms
    assert bench.limit_latency is not None and bench.limit_latency.label == "in-process TorchScript batch 1"
    assert bench.limit_batched is not None and bench.limit_batched.samples_per_request == 8
    assert bench.limit_latency.seconds >= 2 * SECONDS and bench.limit_batched.throughput > 0
    # Triton's statistics per served row: every perf_analyzer request counted, batches formed at c4
    for row in bench.served:
        stats = row.stats["affine"]
        assert stats.requests >= sum(1 for _ in row.results) and stats.executions > 0
        assert sum(stats.batches.values()) == stats.executions
        assert sum(size * count for size, count in stats.batches.items()) == stats.inferences  # each batch's rows
    # the first request after READY, loaded again without and with model_warmup
    assert [(r.name, r.warm) for r in results.first_requests] == [("affine", False), ("affine", True)]
    # serving settings measured side by side: copies of the model with one change each, served in the same rounds
    assert list(bench.tuning) == ["queue delay 0 us", "queue delay 1000 us", "preferred batch 8",
                                  "INTRA_OP_THREAD_COUNT 1", f"{os.cpu_count()} instances x INTRA_OP_THREAD_COUNT 1"]
    assert all([m.concurrency for m in rows] == [1, 16] and all(m.throughput > 0 for m in rows)
               for rows in bench.tuning.values())
    assert all(next(iter(rows[1].stats)).startswith("affine__tune") for rows in bench.tuning.values())
    # the empty model beside it, in the same rounds: its own requests, at c1 over both protocols
    assert [m.label for m in bench.floor] == ["empty model http c1", "empty model grpc c1"] and not bench.floor_error
    assert all(len(m.results) == 2 and m.stats["affine__floor"].requests > 0 for m in bench.floor)
    assert results.build is not None and results.build.noop_build_s < results.build.full_build_s
    markdown, plot = write_report(results, tmp_path / "docs")
    text = markdown.read_text()
    assert _row(text, "served grpc c4", 4) and "2 interleaved rounds" in text and "queue policies lifted" in text
    assert "raw `torch.jit.trace + save`" in text and "full build / raw export" in text
    assert _row(text, "in-process TorchScript batch 8", 1)
    assert "| served grpc c1 p50 − in-process TorchScript batch 1 p50 |" in text
    assert "Where a served request's time goes" in text and "| served http c4 | affine |" in text
    assert "| affine | yes |" in text
    assert _row(text, "empty model grpc c1", 1) and "Where the c1 gap goes" in text
    assert "| queue delay 0 us |" in text and "| INTRA_OP_THREAD_COUNT 1 |" in text
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_empty_model_answers_like_the_model_with_zeros(tmp_path: Path) -> None:
    """What the floor measures is only worth its name if the empty model takes and gives the same tensors."""
    import numpy as np
    import tritonclient.http as http

    from compiler.bench.floor import load_floor
    from compiler.client.requests import infer_inputs
    from compiler.manifest import load_manifest
    from compiler.profiling.writer import profiling_folder
    from compiler.server.session import embedded_server

    built = Project.at(tmp_path).built("""
models:
  - name: two_outputs
    source: {python: "tiny_models:two_outputs"}
    max_batch_size: 4
    inputs: [{name: x, dtype: FP32, dims: [-1], example: {shape: [6]}}]
""")
    model = load_manifest(built.manifest).manifest.models[0]
    with embedded_server(built.output) as (server, _):
        name = load_floor(server, model, profiling_folder(built.output))
        arrays = {"x": np.arange(18, dtype=np.float32).reshape(3, 6)}  # the bench's example length, batch 3
        with http.InferenceServerClient(server.http_url) as client:
            real = client.infer(model.name, infer_inputs(http, model, arrays))
            empty = client.infer(name, infer_inputs(http, model, arrays))
    assert name == "two_outputs__floor"
    outputs = [o["name"] for o in real.get_response()["outputs"]]
    assert len(outputs) == 2
    for output in outputs:
        assert empty.as_numpy(output).shape == real.as_numpy(output).shape  # batch 3, as asked; not the example's 1
        assert empty.as_numpy(output).dtype == real.as_numpy(output).dtype  # FP32 and FP16
        assert not empty.as_numpy(output).any() and real.as_numpy(output).any()
    assert (profiling_folder(built.output) / name / "perf_analyzer.txt").read_text().startswith(
        f"perf_analyzer -m {name} ")


AOTI = """
triton_version: "26.11"
models:
  - name: affine
    source: {python: "tiny_models:affine"}
    export: aoti
    max_batch_size: 8
    inputs: [{name: "ARGS[0]", dtype: FP32, dims: [4]}]
    instance_group: [{kind: KIND_CPU}]
"""


def test_an_aoti_model_is_measured_beside_its_torchscript_twin_and_pytriton(tmp_path: Path) -> None:
    """The served package, the same model traced and served in the same tritonserver, and PyTriton running the
    package: all through perf_analyzer."""
    built = Project.at(tmp_path).built(AOTI)
    results = run_bench(built.manifest, built.output, seconds=SECONDS, concurrencies=(1,), rounds=1,
                        with_pytriton=True, with_build=False, with_profile=False, with_warmup=False, with_tuning=False)
    bench = results.models[0]
    assert [m.label for m in bench.served] == ["served aoti http c1", "served aoti grpc c1"]
    assert [m.label for m in bench.torchscript] == ["served torchscript http c1", "served torchscript http c16",
                                                    "served torchscript grpc c1", "served torchscript grpc c16"]
    assert bench.pytriton_error is None, bench.pytriton_error
    assert bench.pytriton_c1 is not None and bench.pytriton is not None
    assert [bench.pytriton_c1.label, bench.pytriton.label] == ["pytriton http c1", "pytriton http c16"]
    assert all(m.throughput > 0 for m in [*bench.served, *bench.torchscript, bench.pytriton])
    assert not list(built.root.glob(".bench-twins-*.yaml"))  # the twin manifest is gone
    text = write_report(results, tmp_path / "docs")[0].read_text()
    assert _row(text, "pytriton http c16", 16) and "PYTRITON_NO_TENSORSTORE=1" in text
    assert "| served aoti / served TorchScript, grpc c16 throughput |" not in text  # no aoti c16 in this run
    assert _row(text, "served torchscript grpc c16", 16)


def test_a_cell_perf_analyzer_cannot_finish_is_measured_by_the_benchs_own_client(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """perf_analyzer's windows can run away on a busy machine (profiling/perf_analyzer.py, RUNAWAY): past its limit it
    is stopped, and the cell is measured by the bench's own client from the same command, which the report says.
    The limit is made 0 here, so that every run is stopped; the server is real, and counts what the client sent."""
    from compiler.bench.runner import _commands, _PaCell
    from compiler.bench.stats import snapshot
    from compiler.profiling import perf_analyzer
    from compiler.profiling.perf_analyzer import locate
    from compiler.profiling.writer import profiling_folder
    from compiler.server.process import TritonProcess

    built = Project.at(tmp_path).built(MANIFEST)
    monkeypatch.setattr(perf_analyzer, "RUNAWAY", 0)
    monkeypatch.setattr(perf_analyzer, "RUNAWAY_SLACK_S", 0.01)
    command = _commands(profiling_folder(built.output), "affine")[4]
    with TritonProcess(built.output) as server:
        server.wait_ready(120)
        for protocol, url in (("http", server.http_url), ("grpc", server.grpc_url)):
            before = snapshot(server.http_url, ("affine",))["affine"].requests
            cell = _PaCell(f"served {protocol} c4", locate(), command, url, protocol, 4, SECONDS)
            cell.run(warmup=0, tick=lambda: None)
            assert not cell.error and cell.measurement is not None
            result = cell.measurement.results[0]
            assert result.note.startswith("perf_analyzer ran past 0 s: measured by the bench's own client"), result
            assert result.concurrency == 4 and result.protocol == protocol and result.throughput > 0
            assert 0 < result.p50_us <= result.p90_us <= result.p99_us
            assert snapshot(server.http_url, ("affine",))["affine"].requests - before >= 4
