"""optimize (default true): the export is frozen before it is proved; `optimize: false` exports it as it is."""

from __future__ import annotations

import json

import torch

from tests.helpers import Project

MANIFEST = """
    triton_version: "24.10"
    models:
      - name: cnn
        source: {{python: "tiny_models:tiny_cnn"}}
        max_batch_size: 4
        inputs: [{{name: INPUT__0, dtype: FP32, dims: [3, -1, -1], example: {{shape: [3, 32, 32]}}}}]
        instance_group: [{{kind: KIND_CPU}}]
        {optimize}
"""


def test_a_trace_is_frozen_and_proved_frozen(project: Project) -> None:
    project.write(MANIFEST.format(optimize=""))
    result = project.build()
    assert result.code == 0, result.err
    assert "cnn: optimize: frozen (torch.jit.freeze)" in result.err
    model = torch.jit.load(str(project.output / "cnn" / "1" / "model.pt"))
    assert list(model.parameters()) == []  # the weights are constants of the graph
    assert json.loads((project.output / "cnn" / "build.json").read_text())["optimized"] == "torch.jit.freeze"


def test_optimize_false_keeps_the_trace_as_it_is(project: Project) -> None:
    project.write(MANIFEST.format(optimize="optimize: false"))
    result = project.build()
    assert result.code == 0, result.err
    assert "optimize: frozen" not in result.err
    model = torch.jit.load(str(project.output / "cnn" / "1" / "model.pt"))
    assert len(list(model.parameters())) == 4  # two convolutions' weights and biases
    assert json.loads((project.output / "cnn" / "build.json").read_text())["optimized"] == ""
