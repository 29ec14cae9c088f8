"""Property-based fuzzing of the manifest loader: whatever the bytes, only ManifestError escapes."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.errors import ManifestError
from compiler.manifest import load_manifest

KEYS = ["triton_version", "models", "name", "source", "torchvision", "python", "transformers", "torchscript", "weights",
        "export", "version", "max_batch_size", "inputs", "outputs", "dtype", "dims", "example", "shape", "low", "high",
        "instance_group", "kind", "count", "dynamic_batching", "parameters", "tolerance", "atol", "rtol", "alt_shape"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 2**40), st.floats(allow_nan=True),
                    st.sampled_from(["FP32", "TYPE_INT64", "BF16", "trace", "script", "resnet50", "m:f", "24.10",
                                     "../x", "KIND_GPU", "-1", ""]), st.text(max_size=12))
values = st.recursive(scalars, lambda children: st.one_of(
    st.lists(children, max_size=4), st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), children, max_size=5)),
    max_leaves=25)

VALID: dict[str, Any] = {
    "triton_version": "24.10",
    "models": [{"name": "m", "source": {"python": "mod:build"}, "max_batch_size": 4,
                "inputs": [{"name": "x", "dtype": "FP32", "dims": [-1, 3], "example": {"shape": [5, 3]}}]}],
}


def _load(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "models.yaml"
        path.write_bytes(text.encode("utf-8", errors="replace"))
        try:
            load_manifest(path)
        except ManifestError as err:
            assert err.problems and all(p.message for p in err.problems)
            assert err.render()


@settings(max_examples=700, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.lists(st.sampled_from(["models", 0, "inputs", 0, "source", "example", "dims", "name"]), max_size=4),
       value=values)
def test_mutated_valid_manifest(path: list[Any], value: Any) -> None:
    data = json.loads(json.dumps(VALID))
    node: Any = data
    for step in path[:-1]:
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            break
    if path:
        try:
            node[path[-1]] = value
        except (TypeError, IndexError):
            pass
    _load(json.dumps(data, default=str))


@settings(max_examples=400, deadline=None)
@given(document=values)
def test_arbitrary_structure(document: Any) -> None:
    _load(json.dumps(document, default=str))


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=200))
def test_arbitrary_text(text: str) -> None:
    _load(text)


def test_escaped_lone_surrogate_is_a_manifest_error() -> None:
    """Found by the fuzzer in CI: pydantic cannot take a string with a lone surrogate."""
    _load('{"models": [{"name": "\\udc80", "source": {"python": "a:b"}, "inputs": []}]}')
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "models.yaml"
        path.write_text('models:\n  - name: "\\udc80"\n')
        try:
            load_manifest(path)
        except ManifestError as err:
            assert err.problems[0].line == 2 and "not valid Unicode" in err.problems[0].message
        else:
            raise AssertionError("loaded a manifest with a lone surrogate")
