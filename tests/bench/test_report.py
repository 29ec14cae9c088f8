"""The report make bench writes: measured sections are made anew each run, the decisions written by hand below its
marker stay."""

from __future__ import annotations

from pathlib import Path

from compiler.bench.report import BY_HAND, write_report
from compiler.bench.runner import BenchResults


def test_the_hand_written_decisions_survive_a_new_report(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "benchmarks.md").write_text(f"# Benchmarks\n\nold numbers 1.23\n\n{BY_HAND}\n\n## Decisions\n\nkept: x\n")
    markdown, _ = write_report(BenchResults(models=[], build=None, seconds_per_cell=1.0), docs)
    text = markdown.read_text()
    assert "old numbers 1.23" not in text and "Made by `make bench`" in text
    assert text.endswith(f"{BY_HAND}\n\n## Decisions\n\nkept: x\n")
    assert text.count(BY_HAND) == 1


def test_a_report_without_the_marker_is_replaced_whole(tmp_path: Path) -> None:
    (tmp_path / "benchmarks.md").write_text("# Benchmarks\n\n## Decisions\n\nnot marked\n")
    markdown, _ = write_report(BenchResults(models=[], build=None, seconds_per_cell=1.0), tmp_path)
    assert "not marked" not in markdown.read_text()


def test_a_build_that_fails_in_the_bench_is_said_and_the_rest_is_kept(tmp_path: Path) -> None:
    results = BenchResults(models=[], build=None, seconds_per_cell=1.0, build_error="`-m compiler build` exited 3: x")
    text = write_report(results, tmp_path)[0].read_text()
    assert "## Build\n\nNot measured: `-m compiler build` exited 3: x" in text


def test_the_c1_gap_is_split_into_the_empty_models_part_and_the_rest(tmp_path: Path) -> None:
    from compiler.bench.load import Measurement
    from compiler.bench.runner import ModelBench, PaMeasurement
    from compiler.profiling.perf_analyzer import Result

    def served(label: str, p50_ms: float) -> PaMeasurement:
        row = PaMeasurement(label, 1)
        row.results.append(Result(1, label.split()[-2], 100.0, p50_ms * 1000, p50_ms * 1000, p50_ms * 1000))
        return row

    limit = Measurement("in-process package batch 1", 1, 1, seconds=1.0, latencies_ms=[5.0, 5.0, 5.0])
    bench = ModelBench("m", 8, limit_latency=limit, export="aoti",
                       served=[served("served aoti http c1", 7.5), served("served aoti grpc c1", 8.0)],
                       floor=[served("empty model http c1", 0.75), served("empty model grpc c1", 0.5)])
    text = write_report(BenchResults(models=[bench], build=None, seconds_per_cell=1.0), tmp_path)[0].read_text()
    assert "| empty model http c1 | 1 |" in text
    assert "| http | +2.50 ms | 0.75 ms | +1.75 ms |" in text  # 7.5 - 5.0, of which 0.75 with no model
    assert "| grpc | +3.00 ms | 0.50 ms | +2.50 ms |" in text
    bench.floor_error = "model 'm__floor' failed to load: x"
    text = write_report(BenchResults(models=[bench], build=None, seconds_per_cell=1.0), tmp_path)[0].read_text()
    assert "The empty model could not be measured: model 'm__floor' failed to load: x" in text


def test_the_empty_models_config_keeps_the_tensors_and_batching_and_drops_the_model() -> None:
    from compiler.bench.floor import floor_config, floor_module

    served = {"name": "bert", "platform": "torch_aoti", "backend": "pytorch", "runtime": "model.py",
              "default_model_filename": "model.pt2",
              "max_batch_size": 16, "input": [{"name": "ARGS[0]", "data_type": "TYPE_INT64", "dims": ["-1"]}],
              "output": [{"name": "RESULT[h]", "data_type": "TYPE_FP32", "dims": ["-1", "384"]},
                         {"name": "RESULT[n]", "data_type": "TYPE_FP16", "dims": ["2"]}],
              "dynamic_batching": {"max_queue_delay_microseconds": "100"},
              "parameters": {"INTRA_OP_THREAD_COUNT": {"string_value": "1"}},
              "model_warmup": [{"name": "w", "batch_size": 1}],
              "instance_group": [{"name": "bert", "kind": "KIND_CPU", "count": 1}]}
    config = floor_config(served, "bert__floor")
    assert (config["name"], config["platform"], config["backend"]) == ("bert__floor", "pytorch_libtorch", "pytorch")
    assert not {"runtime", "default_model_filename", "model_warmup", "parameters"} & set(config)
    assert {k: config[k] for k in ("input", "output", "dynamic_batching", "max_batch_size")} == \
        {k: served[k] for k in ("input", "output", "dynamic_batching", "max_batch_size")}
    assert config["instance_group"] == [{"kind": "KIND_CPU", "count": 1}]
    assert served["name"] == "bert" and served["platform"] == "torch_aoti"  # the served config is not changed
    import io

    import torch

    empty = torch.jit.load(io.BytesIO(floor_module(config, {"RESULT[h]": [16, 384], "RESULT[n]": [2]})))
    hidden, n = empty(torch.ones(3, 16, dtype=torch.int64))
    assert (hidden.shape, hidden.dtype, n.shape, n.dtype) == ((3, 16, 384), torch.float32, (3, 2), torch.float16)
    assert not hidden.any()


def test_each_pipeline_row_says_where_the_cores_went(tmp_path: Path) -> None:
    from compiler.bench.cpu import CLIENT, REST, SERVER, CpuSpent
    from compiler.bench.pipelines import PipelineBench
    from compiler.bench.runner import PaMeasurement
    from compiler.profiling.perf_analyzer import Result

    row = PaMeasurement("served http c16", 16)
    row.results.append(Result(16, "http", 300.0, 50_000, 70_000, 90_000))
    row.cpu = CpuSpent({SERVER: 18.0, "p_tokenize (Python stub)": 0.7, CLIENT: 0.3, REST: 0.1,
                        "other_model (Python stub)": 0.1}, 10.0, 2)
    bench = PipelineBench("p", ["p_tokenize", "p_encoder"], 16, served=[row])
    text = write_report(BenchResults(models=[], build=None, seconds_per_cell=1.0, pipelines=[bench]),
                        tmp_path)[0].read_text()
    assert "| row | tritonserver | p_tokenize (Python stub) | perf_analyzer | the rest | idle |" in text
    # 19.2 s used of 2 cores x 10 s; another model's stub is counted in the rest
    assert "| served http c16 | 180% | 7% | 3% | 2% | 8% |" in text
    assert "other_model" not in text
