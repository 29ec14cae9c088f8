"""Prove that batching requests together cannot change anyone's answer.

Triton's dynamic batcher stacks requests along dim 0 and splits the outputs
back by row. That is only safe when the model treats the rows of a batch
independently: N examples stacked give, row by row, what N single calls give,
and every output has one row per input row. A model that normalises across
the batch, or returns a fixed number of rows, fails here and is served without
dynamic batching.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from compiler.errors import ExportError, Problem
from compiler.export.examples import Plan, make_inputs, plans_for
from compiler.export.proof import flatten, mismatch
from compiler.manifest.schema import ModelSpec

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
                    unmergeable: str | None = None) -> tuple[bool, str | None]:
    """Whether a config gets dynamic_batching, and a warning when the manifest left it to us and we said no.

    Asked for (settings or `true`): enabled, or the build fails when the proof failed. Left out:
    enabled only when proved. `false`: never. `unmergeable`: why the target's backend answers merged requests wrong
    (the manifest's rules refuse an explicit request); then never.
    """
    if spec.max_batch_size == 0 or spec.dynamic_batching is False:
        return False, None
    if unmergeable:
        if spec.batching_requested:
            raise ExportError(Problem(f"dynamic_batching was asked for, but {unmergeable}", model=spec.name,
                                      field=field, hint="remove dynamic_batching, or export with `trace`"))
        return False, f"no dynamic batching: {unmergeable}; requests are served one at a time"
    if spec.batching_requested:
        if invariance.failure:
            raise ExportError(Problem(
                f"dynamic_batching was asked for, but batching changes the answers: {invariance.failure}",
                model=spec.name, field=field,
                hint="fix the model so each example is computed on its own, or remove dynamic_batching "
                     "(clients may still send batches themselves)"))
        return True, None
    if invariance.failure:
        return False, (f"no dynamic batching: {invariance.failure}; requests are served one by one "
                       "(set `dynamic_batching: false` to say so and silence this)")
    return invariance.holds, None
