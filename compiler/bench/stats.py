"""Where a served request's time goes, from Triton's statistics extension (GET /v2/models/<name>/stats).

Each measured cell takes a snapshot of its models' statistics before and after it runs; the difference is what that
cell cost the server: per stage (queue, compute_input, compute_infer, compute_output) and the batch sizes the
dynamic batcher formed (the executions per batch size in batch_stats).

    before = snapshot(url, ["bert"]); ...run the load...; spent = difference(snapshot(url, ["bert"]), before)
    spent["bert"].per_request_ms("queue"), spent["bert"].mean_batch, spent["bert"].batches   # {16: 120, 9: 4}
"""

from __future__ import annotations

import json
import urllib.request
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

STAGES = ("queue", "compute_input", "compute_infer", "compute_output")


@dataclass
class ModelStats:
    requests: int = 0  # successful requests (inference_stats.success.count)
    inferences: int = 0  # examples (inference_count: a batch of 4 is 4)
    executions: int = 0  # model executions (execution_count: one per formed batch)
    stage_ns: dict[str, int] = field(default_factory=dict)
    batches: Counter[int] = field(default_factory=Counter)  # formed batch size -> executions
    busy_ns: int = 0  # the model's own compute time, each execution once (batch_stats' compute_infer)

    def __sub__(self, other: ModelStats) -> ModelStats:
        return ModelStats(self.requests - other.requests, self.inferences - other.inferences,
                          self.executions - other.executions,
                          {s: self.stage_ns.get(s, 0) - other.stage_ns.get(s, 0) for s in STAGES},
                          Counter({size: n for size, n in (self.batches - other.batches).items() if n > 0}),
                          self.busy_ns - other.busy_ns)

    def __add__(self, other: ModelStats) -> ModelStats:
        return ModelStats(self.requests + other.requests, self.inferences + other.inferences,
                          self.executions + other.executions,
                          {s: self.stage_ns.get(s, 0) + other.stage_ns.get(s, 0) for s in STAGES},
                          self.batches + other.batches, self.busy_ns + other.busy_ns)

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
            stats.stage_ns[stage] = stats.stage_ns.get(stage, 0) + int(inference.get(stage, {}).get("ns", 0))
        for batch in entry.get("batch_stats", []):
            stats.batches[int(batch["batch_size"])] += int(batch.get("compute_infer", {}).get("count", 0))
            stats.busy_ns += int(batch.get("compute_infer", {}).get("ns", 0))
    return found


def snapshot(http_url: str, names: Sequence[str]) -> dict[str, ModelStats]:
    found: dict[str, ModelStats] = {}
    for name in names:
        with urllib.request.urlopen(f"http://{http_url}/v2/models/{name}/stats", timeout=10) as answer:
            found.update(parse(json.loads(answer.read())))
    return found


def difference(after: dict[str, ModelStats], before: dict[str, ModelStats]) -> dict[str, ModelStats]:
    return {name: stats - before.get(name, ModelStats()) for name, stats in after.items()}
