"""Triton's statistics read as the bench reports them, from a payload a real tritonserver 2.51 answered (40 one-example
requests at concurrency 8 to a model with dynamic batching; tests/fixtures/bench/triton_stats_affine.json)."""

from __future__ import annotations

import json
from collections import Counter

from compiler.bench.stats import ModelStats, difference, parse
from tests.helpers import FIXTURES

PAYLOAD = json.loads((FIXTURES / "bench" / "triton_stats_affine.json").read_text())


def test_the_payload_gives_requests_executions_stages_and_formed_batches() -> None:
    stats = parse(PAYLOAD)["affine"]
    assert (stats.requests, stats.inferences, stats.executions) == (40, 40, 19)
    assert stats.batches == {1: 7, 2: 6, 3: 3, 4: 3}  # 7 + 12 + 9 + 12 = 40 examples in 19 executions
    assert stats.stage_ns["queue"] == 237189440 and stats.stage_ns["compute_infer"] == 54190195
    assert stats.busy_ns == 36534277 + 2167802 + 1171582 + 2451392  # each execution once
    assert abs(stats.per_request_ms("queue") - 237.189440 / 40) < 1e-9
    assert abs(stats.mean_batch - 40 / 19) < 1e-9
    assert stats.formed() == "1: 37%, 2: 32%, 3: 16%"


def test_a_cell_costs_the_difference_of_two_snapshots() -> None:
    after = parse(PAYLOAD)
    before = {"affine": ModelStats(10, 10, 9, {"queue": 37189440, "compute_infer": 4190195}, Counter({1: 7, 2: 1}),
                                   36534277 + 500000)}
    spent = difference(after, before)["affine"]
    assert (spent.requests, spent.executions) == (30, 10)
    assert spent.batches == {2: 5, 3: 3, 4: 3}  # batch size 1 did not run during the cell
    assert spent.stage_ns["queue"] == 200000000
    assert spent.busy_ns == 2167802 + 1171582 + 2451392 - 500000
