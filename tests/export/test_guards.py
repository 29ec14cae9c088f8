"""Guards compiled into the export (export/guards.py): which inputs index what, the ranges a manifest may declare,
the hostile requests each model must refuse, and TorchScript exports that refuse them."""

from __future__ import annotations

import json

import pytest
import torch

from compiler.export.binding import bind
from compiler.export.examples import make_inputs, plans_for
from compiler.export.guards import INVALID, Guards, indexing_ranges
from compiler.export.hostile import REFUSED, hostile_cases
from compiler.manifest.schema import ModelSpec
from tests.fixtures.tiny_models import indexers
from tests.helpers import Project

#: What a TorchScript file raises for a refused request (torch.jit.Error is no RuntimeError).
REFUSED_ERRORS = (RuntimeError, torch.jit.Error)

INDEXERS = ModelSpec.model_validate({
    "name": "m", "source": {"python": "tiny_models:indexers"}, "max_batch_size": 4,
    "inputs": [{"name": "ids", "dtype": "INT32", "dims": [-1], "example": {"shape": [6], "high": 30}},
               {"name": "picks", "dtype": "INT64", "dims": [3], "example": {"high": 12}},
               {"name": "slot", "dtype": "INT64", "dims": [], "example": {"high": 5}},
               {"name": "scale", "dtype": "FP32", "dims": [1]}]})


def test_each_input_that_indexes_gets_the_range_of_what_it_indexes() -> None:
    module = indexers()
    binding = bind(INDEXERS, module)
    found = indexing_ranges(module, binding, make_inputs(INDEXERS, plans_for(INDEXERS)[0]))
    assert {name: (r.low, r.high) for name, r in found.items()} == {"ids": (0, 30), "picks": (0, 12)}
    assert found["ids"].source == "an embedding of 30 rows"  # through view() and long()
    # one_hot compares with each class (no gather that could read outside a table), a float only scales


def test_a_declared_range_narrows_and_must_lie_within_the_derived_one(project: Project) -> None:
    manifest = """
        models:
          - name: m
            source: {python: "tiny_models:lookup"}
            max_batch_size: 2
            inputs: [{name: ids, dtype: INT64, dims: [-1], example: {shape: [5], high: 50}, guard: {high: 40}}]
    """
    built = project.built(manifest)
    record = json.loads((built.output / "m" / "build.json").read_text())
    assert record["guards"]["inputs"][0]["values"] == [0, 40, "the manifest's guard"]
    project.write(manifest.replace("high: 40}", "high: 60}"))
    result = project.build()
    assert result.code == 1
    assert "models.yaml:5: model 'm': inputs[0].guard: input 'ids': guard [0, 60) is wider than what the model takes: it " \
           "indexes an embedding of 50 rows, so values must lie in [0, 50)" in result.err


def test_traced_exports_refuse_out_of_range_values_nan_and_empty_dims(project: Project) -> None:
    built = project.built("""
        models:
          - name: ids
            source: {python: "tiny_models:lookup"}
            max_batch_size: 2
            inputs: [{name: ids, dtype: INT64, dims: [-1], example: {shape: [5], high: 50}}]
          - name: floats
            source: {python: "tiny_models:affine"}
            max_batch_size: 2
            inputs: [{name: x, dtype: FP32, dims: [4]}]
          - name: served_as_is
            source: {python: "tiny_models:affine"}
            inputs: [{name: x, dtype: FP32, dims: [4], guard: {finite: false}}]
    """)
    ids = torch.jit.load(str(built.output / "ids" / "1" / "model.pt"))
    with pytest.raises(REFUSED_ERRORS, match=r"invalid request: input 'ids' holds a value outside \[0, 50\)"):
        ids(torch.tensor([[1, 50]]))
    with pytest.raises(REFUSED_ERRORS, match="invalid request: input 'ids' dim 0: its size must be at least 1"):
        ids(torch.zeros(1, 0, dtype=torch.long))
    assert ids(torch.tensor([[1, 49]])).shape == (1, 2, 3)
    floats = torch.jit.load(str(built.output / "floats" / "1" / "model.pt"))
    with pytest.raises(REFUSED_ERRORS, match="invalid request: input 'x' holds NaN or Inf"):
        floats(torch.tensor([[0.0, float("nan"), 1.0, 2.0]]))
    loose = torch.jit.load(str(built.output / "served_as_is" / "1" / "model.pt"))
    assert torch.isnan(loose(torch.tensor([0.0, float("nan"), 1.0, 2.0]))).any()
    record = json.loads((built.output / "ids" / "build.json").read_text())
    guards = Guards.from_record(record["guards"])
    assert guards is not None and guards.describe() == [
        "ids: values in [0, 50) (an embedding of 50 rows), dim 0 1 or more"]


def test_every_guard_gives_a_hostile_case_that_must_be_refused() -> None:
    guards = Guards.from_record({"inputs": [
        {"name": "ids", "values": [0, 30, "an embedding of 30 rows"], "finite": False, "sizes": [[1, 1, 512, "dim 0"]]},
        {"name": "picks", "values": None, "finite": False, "sizes": []},
        {"name": "slot", "values": None, "finite": False, "sizes": []},
        {"name": "scale", "values": None, "finite": True, "sizes": []}], "equal": []})
    cases = {case.label: case for case in hostile_cases(INDEXERS, guards, "aoti")}
    assert {label: case.expect for label, case in cases.items()} == {
        "ids: 30 (above its range)": REFUSED, "ids: -1 (below its range)": REFUSED,
        "scale: NaN": REFUSED, "scale: Inf": REFUSED, "ids dim 0: size 0": REFUSED, "ids dim 0: size 513": REFUSED}
    assert int(cases["ids: 30 (above its range)"].inputs["ids"].max()) == 30
    assert cases["ids dim 0: size 513"].inputs["ids"].shape == (1, 513)
    assert INVALID == "invalid request:"  # the prefix the backend answers 400 for (backend/pytorch/model.py)
