"""Where a served request's time goes, from Triton's statistics extension (GET /v2/models/<name>/stats).

Each measured cell takes a snapshot of its models' statistics before and after it runs; the difference is what that
cell cost the server: per stage (queue, compute_input, compute_infer, compute_output) and the batch sizes the
dynamic batcher formed (the executions per batch size in batch_stats).

    before = snapshot(url, ["bert"]); ...run the load...; spent = difference(snapshot(url, ["bert"]), before)
    spent["bert"].per_request_ms("queue"), spent["bert"].mean_batch, spent["bert"].batches   # {16: 120, 9: 4}
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from compiler.errors import Problem, ServerError

STAGES = ("queue", "compute_input", "compute_infer", "compute_output")
#: NVIDIA's pytorch_backend reports a .pt2 package's per-request statistics with its timestamps out of order (r26.03,
#: r26.04 and r26.05, every release with its pt2 path here): src/pt2/model_instance_state.cc passes exec_end,
#: compute_start, compute_end where TRITONBACKEND_ModelInstanceReportStatistics takes compute_start, compute_end,
#: exec_end (core's include/triton/core/tritonbackend.h; the TorchScript path, src/pt/, passes them in order). Triton
#: then counts the whole execution as compute_input, compute_start - exec_end (negative) as compute_infer, and the
#: model's run as compute_output. Its batch statistics are passed in order.
PT2_ORDER_SOURCE = "pytorch_backend src/pt2/model_instance_state.cc:1035 (r26.05)"


@dataclass
class ModelStats:
    requests: int = 0  # successful requests (inference_stats.success.count)
    inferences: int = 0  # examples (inference_count: a batch of 4 is 4)
    executions: int = 0  # model executions (execution_count: one per formed batch)
    stage_ns: dict[str, int] = field(default_factory=dict)
    batches: Counter[int] = field(default_factory=Counter)  # formed batch size -> executions
    busy_ns: int = 0  # the model's own compute time, each execution once (batch_stats' compute_infer)
    #: the instances' time, inputs in to outputs out, each execution once (batch_stats' three compute stages); the
    #: per-request stages count a batch's time once for each of its requests
    occupied_ns: int = 0

    def __sub__(self, other: ModelStats) -> ModelStats:
        return ModelStats(self.requests - other.requests, self.inferences - other.inferences,
                          self.executions - other.executions,
                          {s: self.stage_ns.get(s, 0) - other.stage_ns.get(s, 0) for s in STAGES},
                          Counter({size: n for size, n in (self.batches - other.batches).items() if n > 0}),
                          self.busy_ns - other.busy_ns, self.occupied_ns - other.occupied_ns)

    def __add__(self, other: ModelStats) -> ModelStats:
        return ModelStats(self.requests + other.requests, self.inferences + other.inferences,
                          self.executions + other.executions,
                          {s: self.stage_ns.get(s, 0) + other.stage_ns.get(s, 0) for s in STAGES},
                          self.batches + other.batches, self.busy_ns + other.busy_ns,
                          self.occupied_ns + other.occupied_ns)

    @property
    def out_of_order(self) -> bool:
        """compute_infer summed below zero: no backend that stamps its timestamps in order can report that."""
        return self.stage_ns.get("compute_infer", 0) < 0

    def in_order(self) -> ModelStats:
        """The stages a backend with PT2_ORDER's mistake meant: its compute_input is the whole execution (E), its
        compute_infer is the real compute_input minus E, its compute_output the real compute_infer. Only for one
        model's own statistics: an ensemble sums its steps', in order and not, and cannot be taken apart."""
        whole, shifted, run = (self.stage_ns.get(s, 0) for s in ("compute_input", "compute_infer", "compute_output"))
        before = shifted + whole
        stages = {**self.stage_ns, "compute_input": before, "compute_infer": run,
                  "compute_output": whole - before - run}
        return ModelStats(self.requests, self.inferences, self.executions, stages, Counter(self.batches), self.busy_ns,
                          self.occupied_ns)

    def per_request_ms(self, stage: str) -> float:
        """Mean milliseconds a request spent in `stage` (compute stages are per execution, shared by its batch:
        Triton counts each request of a batch with the batch's whole compute time)."""
        return self.stage_ns.get(stage, 0) / self.requests / 1e6 if self.requests else float("nan")

    @property
    def mean_batch(self) -> float:
        return self.inferences / self.executions if self.executions else float("nan")

    def formed(self, top: int = 3) -> str:
        """The most frequent formed batch sizes with their share of executions: "16: 81%, 15: 9%, 8: 4%"."""
        total = sum(self.batches.values())
        return ", ".join(f"{size}: {100 * n / total:.0f}%" for size, n in self.batches.most_common(top)) if total else "-"


def parse(payload: dict[str, Any]) -> dict[str, ModelStats]:
    """Model name -> its statistics, from the extension's JSON (all versions summed)."""
    found: dict[str, ModelStats] = {}
    for entry in payload.get("model_stats", []):
        stats = found.setdefault(entry["name"], ModelStats())
        inference = entry.get("inference_stats", {})
        stats.requests += int(inference.get("success", {}).get("count", 0))
        stats.inferences += int(entry.get("inference_count", 0))
        stats.executions += int(entry.get("execution_count", 0))
        for stage in STAGES:
            stats.stage_ns[stage] = _signed(stats.stage_ns.get(stage, 0) + int(inference.get(stage, {}).get("ns", 0)))
        for batch in entry.get("batch_stats", []):
            stats.batches[int(batch["batch_size"])] += int(batch.get("compute_infer", {}).get("count", 0))
            stats.busy_ns += int(batch.get("compute_infer", {}).get("ns", 0))
            stats.occupied_ns += sum(int(batch.get(stage, {}).get("ns", 0)) for stage in STAGES[1:])
    return found


def snapshot(http_url: str, names: Sequence[str]) -> dict[str, ModelStats]:
    found: dict[str, ModelStats] = {}
    for name in names:
        try:
            with urllib.request.urlopen(f"http://{http_url}/v2/models/{name}/stats", timeout=10) as answer:
                found.update(parse(json.loads(answer.read())))
        except urllib.error.HTTPError as err:  # a model not loaded (any more): Triton says why in the body
            said = err.read().decode(errors="replace").strip()
            raise ServerError(Problem(f"Triton's statistics: HTTP {err.code}: {said}",
                                      model=name)) from None
        except OSError as err:  # no server there (it exited, or restarts)
            raise ServerError(Problem(f"Triton's statistics: {getattr(err, 'reason', err)}",
                                      model=name)) from None
    return found


#: How long two reads of the statistics must agree before they are taken as settled, and how long to wait at most.
QUIET_S = 0.05
SETTLE_DEADLINE_S = 10.0


def settled(http_url: str, names: Sequence[str], at_least: Mapping[str, int] | None = None,
            read: Callable[[str, Sequence[str]], dict[str, ModelStats]] = snapshot) -> dict[str, ModelStats]:
    """A snapshot taken once the statistics of every answered request are in. A backend reports an execution's
    statistics after it has sent its responses (NVIDIA's pytorch_backend and the Python backend both), so a client
    holding every answer can read the statistics before the last execution's have landed: under load, 2 reads in 1000
    taken right after a gRPC answer missed its execution here, and in CI a burst of 8 requests read as "10 requests in
    8 executions", an earlier request's late statistics counted in the burst. Reads until each model in `at_least` has
    that many successful requests and two reads QUIET_S apart agree, or SETTLE_DEADLINE_S passes (then the last read).
    """
    deadline = time.monotonic() + SETTLE_DEADLINE_S
    last = read(http_url, names)
    while True:
        time.sleep(QUIET_S)
        now = read(http_url, names)
        counted = all(now[name].requests >= wanted for name, wanted in (at_least or {}).items())
        if (counted and now == last) or time.monotonic() > deadline:
            return now
        last = now


def _signed(ns: int) -> int:
    """Triton sums stage durations in uint64: a negative duration (PT2_ORDER) wraps; read the sum back as signed."""
    return (ns + 2**63) % 2**64 - 2**63


def difference(after: dict[str, ModelStats], before: dict[str, ModelStats]) -> dict[str, ModelStats]:
    spent = {name: stats - before.get(name, ModelStats()) for name, stats in after.items()}
    for stats in spent.values():
        stats.stage_ns = {stage: _signed(ns) for stage, ns in stats.stage_ns.items()}
    return spent
