"""optimize (default true): the export is frozen (a CNN's weights channels_last) before it is proved; `optimize:
false` exports it as it is."""

from __future__ import annotations

import json

import pytest
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


def _conv_weights(model: torch.jit.ScriptModule) -> list[torch.Tensor]:
    constants = [node.output().toIValue() for node in model.graph.nodes()
                 if node.kind() == "prim::Constant" and node.output().type().kind() == "TensorType"]
    return [t for t in constants if isinstance(t, torch.Tensor) and t.dim() == 4]


def test_a_trace_is_frozen_and_proved_frozen(project: Project) -> None:
    project.write(MANIFEST.format(optimize=""))
    result = project.build()
    assert result.code == 0, result.err
    assert "cnn: optimize: frozen (torch.jit.freeze)" in result.err
    assert "cnn: optimize: channels_last" in result.err
    model = torch.jit.load(str(project.output / "cnn" / "1" / "model.pt"))
    assert list(model.parameters()) == []  # the weights are constants of the graph
    weights = _conv_weights(model)
    assert len(weights) == 2 and all(w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()
                                     for w in weights)  # saved and loaded in NHWC order
    record = json.loads((project.output / "cnn" / "build.json").read_text())
    assert record["optimized"] == "torch.jit.freeze + channels_last"


def test_a_model_without_convolutions_is_frozen_only(project: Project) -> None:
    project.write(MANIFEST.replace("tiny_models:tiny_cnn", "tiny_models:affine").replace(
        "dims: [3, -1, -1], example: {{shape: [3, 32, 32]}}", "dims: [4]").format(optimize=""))
    result = project.build()
    assert result.code == 0, result.err
    assert "channels_last" not in result.err
    assert json.loads((project.output / "cnn" / "build.json").read_text())["optimized"] == "torch.jit.freeze"


def test_optimize_false_keeps_the_trace_as_it_is(project: Project) -> None:
    project.write(MANIFEST.format(optimize="optimize: false"))
    result = project.build()
    assert result.code == 0, result.err
    assert "optimize: frozen" not in result.err
    model = torch.jit.load(str(project.output / "cnn" / "1" / "model.pt"))
    assert len(list(model.parameters())) == 4  # two convolutions' weights and biases
    assert all(p.is_contiguous() for p in model.parameters()) and "channels_last" not in result.err
    assert json.loads((project.output / "cnn" / "build.json").read_text())["optimized"] == ""


def test_max_autotune_is_refused_for_torchscript_at_its_line(project: Project) -> None:
    project.write(MANIFEST.format(optimize="optimize: max-autotune"))
    result = project.build()
    assert result.code != 0
    line = [text.strip() for text in project.manifest.read_text().splitlines()].index("optimize: max-autotune") + 1
    assert f"{project.manifest}:{line}:" in result.err and "cnn" in result.err
    assert "max-autotune is an AOTInductor option" in result.err and "export: aoti" in result.err


AOTI = """
    triton_version: "26.11"
    target_torch: "2.14"
    models:
      - name: affine
        source: {{python: "tiny_models:affine"}}
        export: aoti
        max_batch_size: 8
        inputs: [{{name: "ARGS[0]", dtype: FP32, dims: [4]}}]
        instance_group: [{{kind: KIND_CPU}}]
        {optimize}
"""


@pytest.mark.slow  # a max-autotune compile benchmarks kernels: minutes on two cores
def test_max_autotune_compiles_the_package_with_it_and_proves_it(project: Project) -> None:
    """inductor benchmarks its GEMM kernels while compiling (what build.json and the build's progress say); the
    package is then proved against eager like any other."""
    project.write(AOTI.format(optimize="optimize: max-autotune"))
    result = project.build()
    assert result.code == 0, result.err
    assert "'max_autotune': True" in result.err and "prove" in result.err
    record = json.loads((project.output / "affine" / "build.json").read_text())
    assert record["optimized"] == "inductor freezing + inductor max_autotune"
