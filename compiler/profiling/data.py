"""Request data that a model accepts, made from its manifest entry without torch.

Integer inputs stay inside the example's [low, high) range and, for a
transformers model, inside the vocabulary of its config.json. Inputs named as
attention masks get ones and token type ids get zeros: what a tokenizer sends
for a single sentence, so the profile measures the model's real work.
"""

from __future__ import annotations

import base64
import json
import math
import random
from pathlib import Path
from typing import Any

from compiler import datatypes
from compiler.export.examples import DEFAULT_FLOAT_RANGE, DEFAULT_INTEGER_SPAN
from compiler.manifest.schema import InputSpec, ModelSpec, TransformersSource

SAMPLES = 4
#: Above this many values per request (an image), one sample: perf_analyzer reuses it, and the file stays small.
LARGE = 65536
_ONES = ("attention_mask", "mask")
_ZEROS = ("token_type_ids", "segment_ids")


def request_shape(spec: InputSpec) -> list[int]:
    """The per-request shape (no batch dim): the example's, which fills every -1."""
    if spec.example and spec.example.shape:
        return list(spec.example.shape)
    return list(spec.dims) if spec.dims else [1]


def shape_flags(model: ModelSpec) -> list[str]:
    """perf_analyzer --shape values (NAME:d1,d2) for every input with a variable dim."""
    return [f"{spec.name}:{','.join(str(d) for d in request_shape(spec))}" for spec in model.inputs if -1 in spec.dims]


def vocabulary_size(model: ModelSpec, manifest_dir: Path) -> int | None:
    if not isinstance(model.source, TransformersSource):
        return None
    from compiler.sources.paths import PathNotFound, resolve_path

    try:
        folder = resolve_path(model.source.transformers, manifest_dir)
        size = json.loads((Path(folder) / "config.json").read_text()).get("vocab_size")
    except (PathNotFound, OSError, ValueError):
        return None
    return int(size) if isinstance(size, int) else None


def _values(spec: InputSpec, count: int, vocabulary: int | None, rng: random.Random) -> list[Any]:
    row = datatypes.lookup(spec.dtype)
    lowered = spec.name.lower()
    low = spec.example.low if spec.example and spec.example.low is not None else None
    high = spec.example.high if spec.example and spec.example.high is not None else None
    if row.api_name == "BOOL":
        return [rng.random() < 0.5 for _ in range(count)]
    if row.is_integer:
        if any(key in lowered for key in _ONES):
            return [1] * count
        if any(key in lowered for key in _ZEROS):
            return [0] * count
        lo = int(low) if low is not None else 0
        hi = int(high) if high is not None else lo + DEFAULT_INTEGER_SPAN
        if vocabulary is not None and "ids" in lowered:
            hi = min(hi, vocabulary)
        return [rng.randrange(lo, hi) for _ in range(count)]
    bottom = float(low) if low is not None else DEFAULT_FLOAT_RANGE[0]
    top = float(high) if high is not None else DEFAULT_FLOAT_RANGE[1]
    return [round(rng.uniform(bottom, top), 6) for _ in range(count)]


#: Datatypes perf_analyzer takes only as raw bytes ("b64"), never as JSON numbers ("Can not use explicit tensor
#: description for fp16 datatype", perf_analyzer 2.51).
RAW_BYTES = {"FP16", "BF16"}


def _encoded(spec: InputSpec, values: list[Any]) -> dict[str, Any]:
    """{"content": [...]} or, for the datatypes perf_analyzer reads only as bytes, {"b64": little-endian bytes}."""
    row = datatypes.lookup(spec.dtype)
    if row.api_name in RAW_BYTES:
        import numpy as np

        array = np.asarray(values, dtype=np.float32).astype(row.numpy_dtype()).astype(row.numpy_dtype().newbyteorder("<"))
        return {"b64": base64.b64encode(array.tobytes()).decode()}
    return {"content": values}


def input_data(model: ModelSpec, manifest_dir: Path, samples: int = SAMPLES) -> dict[str, Any]:
    """perf_analyzer's --input-data JSON: {"data": [{NAME: {"content": [...] or "b64": ..., "shape": [...]}}, ...]}."""
    rng = random.Random(f"profiling:{model.name}")
    vocabulary = vocabulary_size(model, manifest_dir)
    if sum(math.prod(request_shape(spec)) for spec in model.inputs) > LARGE:
        samples = 1
    data = []
    for _ in range(samples):
        entry = {}
        for spec in model.inputs:
            shape = request_shape(spec)
            values = _values(spec, math.prod(shape), vocabulary, rng)
            entry[spec.name] = {**_encoded(spec, values), "shape": shape}
        data.append(entry)
    return {"data": data}
