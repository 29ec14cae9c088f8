"""Proofs that cannot pass vacuously: signed example values, tiny outputs compared relatively, constant outputs
said loudly, and served output shapes held to the config's dims."""

from __future__ import annotations

import numpy as np
import pytest
from tritonclient.grpc import model_config_pb2 as pb

from compiler.export.examples import DEFAULT_FLOAT_RANGE
from compiler.triton_config import parse_text
from compiler.verify.runner import shape_problem
from tests.helpers import Project

POSITIVES = """
models:
  - name: m
    source: {python: "tiny_models:positives"}
    inputs: [{name: x, dtype: FP32, dims: [8]}]
"""


def test_default_float_examples_are_signed() -> None:
    assert DEFAULT_FLOAT_RANGE[0] < 0 < DEFAULT_FLOAT_RANGE[1]


def test_an_output_whose_size_depends_on_the_values_cannot_be_declared_fixed(project: Project) -> None:
    project.write(POSITIVES + "    outputs: [{name: OUTPUT__0, dtype: FP32, dims: [8]}]\n")
    result = project.build()
    assert result.code == 1
    assert "output 'OUTPUT__0' declared TYPE_FP32 [8], the model gives TYPE_FP32 [-1]" in result.err


def test_undeclared_it_is_derived_variable(project: Project) -> None:
    project.built(POSITIVES)
    assert list(parse_text((project.output / "m" / "config.pbtxt").read_text()).output[0].dims) == [-1]


def test_tiny_outputs_are_compared_relative_to_their_scale(project: Project) -> None:
    """x * 1e-9 * batch: every value is far below atol 1e-4, and the trace is wrong at another batch size."""
    project.write("""
        models:
          - name: m
            source: {python: "tiny_models:tiny_baked_batch"}
            max_batch_size: 4
            inputs: [{name: x, dtype: FP32, dims: [4]}]
    """)
    result = project.build()
    assert result.code == 1, result.out
    assert "batch dim: traced at batch 2, at batch 1" in result.err
    assert "times the output's own scale" in result.err


def test_a_constant_output_is_a_loud_warning_at_the_models_line(project: Project) -> None:
    project.write("""
        models:
          - name: m
            source: {python: "tiny_models:zeros"}
            inputs: [{name: x, dtype: FP32, dims: [4]}]
    """)
    result = project.build()
    assert result.code == 0, result.err
    assert f"{project.manifest}:2: weak proof: output 0 is 0 everywhere, at every proved input" in result.out
    import json

    record = json.loads((project.output / "m" / "build.json").read_text())
    assert record["weak_outputs"] and "0 everywhere" in record["weak_outputs"][0]


def _config(dims: list[int], batch: int = 0, reshape: list[int] | None = None) -> pb.ModelConfig:
    config = pb.ModelConfig(max_batch_size=batch)
    out = config.output.add(name="OUTPUT__0", data_type=pb.TYPE_FP32, dims=dims)
    if reshape is not None:
        out.reshape.shape.extend(reshape)
    return config


@pytest.mark.parametrize(("dims", "batch", "served", "ok"), [
    ([8], 0, (8,), True),
    ([8], 0, (4,), False),
    ([-1], 0, (4,), True),
    ([8], 2, (2, 8), True),
    ([8], 2, (2, 3), False),
    ([3, -1], 0, (3,), False),
])
def test_served_shapes_are_held_to_the_config(dims: list[int], batch: int, served: tuple[int, ...], ok: bool) -> None:
    problem = shape_problem(_config(dims, batch), {"OUTPUT__0": np.zeros(served, dtype=np.float32)})
    assert (problem is None) == ok, problem


def test_a_scalar_per_example_may_come_back_as_its_reshape() -> None:
    assert shape_problem(_config([1], 4, reshape=[]), {"OUTPUT__0": np.zeros((4,), dtype=np.float32)}) is None
    assert shape_problem(_config([1], 4, reshape=[]), {"OUTPUT__0": np.zeros((4, 1), dtype=np.float32)}) is None
