"""Triton's statistics read as the bench reports them, from payloads a real tritonserver 2.51 answered: 40 one-example
requests at concurrency 8 to a model with dynamic batching (tests/fixtures/bench/triton_stats_affine.json), and 6
requests to the committed resnet, a .pt2 package served by NVIDIA's pytorch_backend r26.05
(triton_stats_resnet_pt2.json)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from types import SimpleNamespace

import pytest

from compiler.bench import stats as stats_module
from compiler.bench.stats import ModelStats, difference, parse, settled
from tests.helpers import FIXTURES

PAYLOAD = json.loads((FIXTURES / "bench" / "triton_stats_affine.json").read_text())


def test_the_payload_gives_requests_executions_stages_and_formed_batches() -> None:
    stats = parse(PAYLOAD)["affine"]
    assert (stats.requests, stats.inferences, stats.executions) == (40, 40, 19)
    assert stats.batches == {1: 7, 2: 6, 3: 3, 4: 3}  # 7 + 12 + 9 + 12 = 40 examples in 19 executions
    assert stats.stage_ns["queue"] == 237189440 and stats.stage_ns["compute_infer"] == 54190195
    assert stats.busy_ns == 36534277 + 2167802 + 1171582 + 2451392  # each execution once
    # the instances' time, inputs in to outputs out, each execution once: far less than the per-request stages' sum,
    # which counts a batch's time once for each of its requests
    assert stats.occupied_ns == (258519 + 36534277 + 408775) + (129017 + 2167802 + 515231) + (
        76779 + 1171582 + 313094) + (137656 + 2451392 + 452522)
    per_request = sum(stats.stage_ns[s] for s in ("compute_input", "compute_infer", "compute_output"))
    assert per_request > 1.2 * stats.occupied_ns
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


def test_a_pt2_packages_out_of_order_timestamps_are_read_back_in_order() -> None:
    """pytorch_backend's pt2 path passes its per-request timestamps out of order (stats.PT2_ORDER_SOURCE): Triton's
    compute_infer sum wrapped below zero in uint64. Put back in order, each stage equals what the same executions'
    batch statistics say, which the backend reports in order (one request per execution here)."""
    from compiler.bench.report import _stages
    from compiler.bench.stats import PT2_ORDER_SOURCE

    payload = json.loads((FIXTURES / "bench" / "triton_stats_resnet_pt2.json").read_text())
    stats = parse(payload)["resnet"]
    assert stats.out_of_order and stats.stage_ns["compute_infer"] < 0  # read back signed, not 1.8e19
    batch = payload["model_stats"][0]["batch_stats"][0]
    fixed = stats.in_order()
    assert not fixed.out_of_order
    for stage in ("compute_input", "compute_infer", "compute_output"):
        assert fixed.stage_ns[stage] == int(batch[stage]["ns"]), stage
    assert fixed.stage_ns["queue"] == stats.stage_ns["queue"]

    row = SimpleNamespace(label="served http c1", stats={"resnet": stats, "classify_image": stats})  # as the report
    text = "\n".join(_stages([row], ["classify_image", "resnet"], frozenset({"classify_image"})))  # type: ignore[list-item]
    ensemble, model = ([cell.strip() for cell in line.split("|")[1:-1]] for line in text.splitlines()
                       if line.startswith("| served http c1 |"))
    assert model[1:3] == ["resnet (reordered)", "6"]
    assert model[4:7] == [f"{int(batch[stage]['ns']) / 6 / 1e6:.2f}" for stage in ("compute_input", "compute_infer",
                                                                                  "compute_output")]
    assert ensemble[4:7] == ["-", "-", "-"]  # an ensemble's sums cannot be taken apart: left out
    assert PT2_ORDER_SOURCE in text


def _reads(*counts: tuple[int, int]) -> tuple[list[int], Callable[[str, Sequence[str]], dict[str, ModelStats]]]:
    """A statistics reader answering (requests, executions) in turn, the last one from then on, and the reads made."""
    made: list[int] = []

    def read(url: str, names: Sequence[str]) -> dict[str, ModelStats]:
        made.append(1)
        requests, executions = counts[min(len(made), len(counts)) - 1]
        return {"m": ModelStats(requests, requests, executions)}

    return made, read


def test_statistics_are_read_once_the_answered_requests_are_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    """A backend reports an execution's statistics after its answers are sent: reads that agree but lack requests
    the client has answers for are not the count (CI read an earlier request's late execution into a burst)."""
    monkeypatch.setattr(stats_module, "QUIET_S", 0.001)
    made, read = _reads((9, 9), (9, 9), (9, 9), (10, 9), (10, 9))
    assert settled("url", ["m"], {"m": 10}, read=read)["m"].requests == 10
    assert len(made) == 5  # the fourth read has them all, and the fifth agrees


def test_statistics_still_moving_are_read_again_until_two_reads_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stats_module, "QUIET_S", 0.001)
    made, read = _reads((8, 6), (9, 7), (10, 8), (10, 8))
    assert (settled("url", ["m"], read=read)["m"].executions, len(made)) == (8, 4)


def test_statistics_that_never_count_the_answers_are_read_until_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """A request answered without reaching the model (counted nowhere) costs the wait, not the answer."""
    monkeypatch.setattr(stats_module, "QUIET_S", 0.001)
    monkeypatch.setattr(stats_module, "SETTLE_DEADLINE_S", 0.05)
    made, read = _reads((9, 9))
    assert settled("url", ["m"], {"m": 10}, read=read)["m"].requests == 9
    assert len(made) > 2
