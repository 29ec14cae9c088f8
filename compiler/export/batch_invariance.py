"""Prove that batching requests together cannot change anyone's answer.

Triton's dynamic batcher stacks requests along dim 0 and splits the outputs
back by row. That is only safe when the model treats the rows of a batch
independently: N examples stacked give, row by row, what N single calls give,
and every output has one row per input row. A model that normalises across
the batch, or returns a fixed number of rows, fails here and is never merged:
its requests queue and run one at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from compiler.datatypes import Tensors
from compiler.errors import ExportError, Problem
from compiler.export.examples import Plan, make_inputs, plans_for
from compiler.export.proof import flatten, mismatch
from compiler.manifest.schema import MERGE, QUEUE, ModelSpec

#: How many examples are stacked for the proof (capped by max_batch_size).
PROOF_BATCH = 4


@dataclass(frozen=True)
class Invariance:
    checked: int  # examples stacked; 0 when no proof was possible (max_batch_size < 2)
    failure: str | None = None

    @property
    def holds(self) -> bool:
        return self.checked >= 2 and self.failure is None


def prove_batch_invariance(model: ModelSpec, module: Any, call: Any, largest_batch: int) -> Invariance:
    """Run `call(module, inputs)` on N single examples and on them stacked; compare row by row."""
    import torch

    count = min(PROOF_BATCH, largest_batch)
    if count < 2:
        return Invariance(0)
    base = plans_for(model)[0]
    singles = [make_inputs(model, Plan(f"single {k}", 1, base.sizes, seed=100 + k)) for k in range(count)]
    stacked = {name: torch.cat([single[name] for single in singles]) for name in singles[0]}
    with torch.no_grad():
        together = flatten(call(module, stacked))
        alone = [flatten(call(module, single)) for single in singles]
    for k, tensor in enumerate(together):
        if not tensor.dim() or tensor.shape[0] != count:
            shape = list(tensor.shape)
            return Invariance(count, f"for a batch of {count} output {k} has shape {shape}: its first dim does not "
                                     "follow the batch")
    for row, outputs in enumerate(alone):
        detail = mismatch(model, outputs, [tensor[row:row + 1] for tensor in together])
        if detail:
            return Invariance(count, f"example {row} alone and in a batch of {count} differ: {detail}")
    return Invariance(count)


def decide_batching(spec: ModelSpec, invariance: Invariance, field: str,
                    unmergeable: str | None = None) -> tuple[str | None, str | None]:
    """The dynamic batching a config gets (MERGE, QUEUE or None), and a note when the manifest left it to us and
    requests are not merged.

    `false`, or no batch dim: none. Otherwise every model gets a queue, so that its queue policy bounds the wait:
    merged (MERGE) where the manifest asks it and batch invariance holds (the build fails where it does not), or where
    the manifest leaves it to us and the proof holds; one request per execution (QUEUE) where the manifest asks
    preferred_batch_size [1] with no delay, where batch invariance fails, and where the target's backend answers
    merged requests wrong (`unmergeable`; the manifest's rules refuse an explicit request to merge there)."""
    if spec.sequence_batching is not None and spec.max_batch_size > 0 and invariance.failure:
        raise ExportError(Problem(f"the sequence batcher runs up to max_batch_size sequences in one execution, but "
                                  f"batching changes the answers: {invariance.failure}", model=spec.name,
                                  field="max_batch_size", hint="fix the model so each example is computed on its own, "
                                  "or set max_batch_size: 0 (one sequence per execution)"))
    if spec.max_batch_size == 0 or spec.dynamic_batching is False or spec.sequence_batching is not None:
        return None, None
    asked = spec.batching_requested
    merges = asked and spec.batching_settings.merges
    if unmergeable:
        if merges:
            raise ExportError(Problem(f"dynamic_batching merges requests, but {unmergeable}", model=spec.name,
                                      field=field, hint="write preferred_batch_size: [1] (each request runs alone, "
                                      "queued under its queue policy), or export with `trace`"))
        return QUEUE, None if asked else f"requests queue and run one at a time, never merged: {unmergeable}"
    if asked and not merges:
        return QUEUE, None
    if invariance.failure:
        if merges:
            raise ExportError(Problem(
                f"dynamic_batching was asked for, but batching changes the answers: {invariance.failure}",
                model=spec.name, field=field,
                hint="fix the model so each example is computed on its own, or write preferred_batch_size: [1] "
                     "(each request runs alone)"))
        return QUEUE, (f"requests are not merged: {invariance.failure}; they queue and run one at a time "
                       "(set `dynamic_batching: false` for no queue at all)")
    return (MERGE if merges or invariance.holds else QUEUE), None


def measure_execution(module: Any, call: Any, inputs: Tensors, runs: int = 3) -> float:
    """Milliseconds one execution of `call(module, inputs)` takes here: the fastest of `runs`, after one to warm up
    (what a derived queue policy is sized by: the fastest is the nearest to the model's own time on a shared machine;
    a machine that runs the model faster queues less than it could)."""
    import time

    import torch

    timings = []
    with torch.no_grad():
        call(module, inputs)
        for _ in range(runs):
            started = time.perf_counter()
            call(module, inputs)
            timings.append((time.perf_counter() - started) * 1000)
    return min(timings)
