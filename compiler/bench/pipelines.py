"""The pipelines in `make bench`: each served ensemble, measured by perf_analyzer with raw texts or image bytes,
against the same steps run in one process (the step code the served steps run, around eager PyTorch: tokenize a
batch, the module at that batch, pool); and where a served request's time goes, per step, from Triton's statistics.

    data = input_data(plan, items)           # perf_analyzer's --input-data for raw inputs
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compiler.bench.load import Measurement


@dataclass
class PipelineBench:
    name: str
    steps: list[str]  # the ensemble's step models, in order
    batch: int  # the in-process batch (the ensemble's max_batch_size, at most 16)
    in_process_single: Measurement | None = None
    in_process: Measurement | None = None
    served: list[Any] = field(default_factory=list)  # PaMeasurements, their stats per step


def _encoded(item: str | bytes) -> dict[str, Any]:
    """One raw input as perf_analyzer's JSON takes a BYTES element: a text as content; other bytes as b64 of the
    serialized tensor (each element 4-byte little-endian length, then its bytes), as Triton's wire format has it."""
    if isinstance(item, str):
        return {"content": [item], "shape": [1]}
    return {"b64": base64.b64encode(struct.pack("<I", len(item)) + item).decode(), "shape": [1]}


def input_data(input_name: str, items: Sequence[str | bytes]) -> dict[str, Any]:
    return {"data": [{input_name: _encoded(item)} for item in items]}


def write_commands(name: str, input_name: str, items: Sequence[str | bytes], folder: Path,
                   concurrencies: Sequence[int]) -> dict[int, list[str]]:
    """perf_analyzer's input file for the pipeline, and one command per concurrency (one raw input per request)."""
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "input_data.json"
    data.write_text(json.dumps(input_data(input_name, items)))
    return {c: ["perf_analyzer", "-m", name, "--input-data", str(data), "-b", "1", "--concurrency-range", f"{c}:{c}",
                "-i", "grpc", "-u", "localhost:8001"] for c in concurrencies}


def in_process_caller(chain: Any, input_name: str, items: Sequence[str | bytes],
                      batch: int) -> Callable[[], Callable[[], Any]]:
    """The whole pipeline in this process at `batch` raw inputs per call (the proof's chain around eager)."""
    from compiler.pipeline.proof import as_request

    chosen = [items[i % len(items)] for i in range(batch)]
    request = {input_name: as_request(chosen)}

    def make() -> Callable[[], Any]:
        return lambda: chain.run(request)

    return make
