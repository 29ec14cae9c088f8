"""Proved in the torch the image ships: a build for Triton 26.03 (PyTorch 2.11, the release table) loads its package
and its TorchScript file in a cached venv of torch 2.11 and holds them to eager PyTorch's answers there; a package
that the older torch cannot load is refused naming what is missing."""

from __future__ import annotations

import json

import pytest

from compiler.compat.pytorch_versions import TorchVersion, libtorch_of
from compiler.releases import Release
from tests.helpers import Project

CNN_AND_IDS = """
triton_version: "26.03"
models:
  - name: heads                        # two inputs: pytorch_backend r26.03 loads no other count (AOTI-INPUT-COUNT)
    source: {python: "tiny_models:heads"}
    export: aoti
    max_batch_size: 2
    inputs:
      - {name: INPUT__0, dtype: INT64, dims: [-1], example: {shape: [7], high: 50}}
      - {name: INPUT__1, dtype: BOOL, dims: [-1], example: {shape: [7]}}
    instance_group: [{kind: KIND_CPU}]
  - name: lookup
    source: {python: "tiny_models:lookup"}
    export: trace
    max_batch_size: 2
    inputs: [{name: ids, dtype: INT64, dims: [-1], example: {shape: [6], high: 50}}]
"""


def test_the_table_knows_the_26_01_to_26_05_images_and_no_later_one() -> None:
    expected = {"26.01": "2.10", "26.02": "2.11", "26.03": "2.11", "26.04": "2.12", "26.05": "2.12"}
    for release, torch in expected.items():
        assert libtorch_of(Release.parse(release)) == TorchVersion.parse(torch)
    assert all(libtorch_of(Release.parse(f"26.{m:02d}")) is None for m in range(6, 12))  # never guessed


def test_an_unknown_image_torch_is_said_and_an_off_proof_too(project: Project) -> None:
    unknown = project.built("""
        triton_version: "26.11"
        models:
          - name: m
            source: {python: "tiny_models:affine"}
            inputs: [{name: x, dtype: FP32, dims: [4]}]
    """)
    assert "not proved for 26.11: its PyTorch version is not known (give `target_torch:`" in unknown.build().out
    project.write(CNN_AND_IDS.split("  - name: heads")[0] + "  - name: lookup" + CNN_AND_IDS.split("  - name: lookup")[1])
    off = project.build("--no-cross-proof")
    assert off.code == 0, off.err
    assert "not proved in torch 2.11 (Triton 26.03's): the cross-version proof is off" in off.out


@pytest.mark.slow
def test_a_26_03_build_is_proved_in_torch_2_11(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRITON_COMPILER_CROSS_PROOF", "1")
    project.write(CNN_AND_IDS)
    result = project.build()
    assert result.code == 0, result.err
    for name in ("heads", "lookup"):
        assert f"{name}: proved in torch 2.11" in result.err
        proved_in = json.loads((project.output / name / "build.json").read_text())["proved_in"]
        assert proved_in[0].startswith("2.14") and proved_in[1].startswith("2.11.")


@pytest.mark.slow
def test_a_shim_the_images_torch_lacks_is_caught(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real break between torch 2.14 and 2.11: grid_sample over a volume compiles to a shim 2.11 does not export."""
    monkeypatch.setenv("TRITON_COMPILER_CROSS_PROOF", "1")
    project.write("""
        triton_version: "26.03"
        models:
          - name: vol
            source: {python: "tiny_models:volume"}
            export: aoti
            inputs:
              - {name: INPUT__0, dtype: FP32, dims: [1, 2, 4, 4, 4]}
              - {name: INPUT__1, dtype: FP32, dims: [1, 3, 3, 3, 3]}
            instance_group: [{kind: KIND_CPU}]
    """)
    result = project.build()
    assert result.code == 1
    assert "models.yaml:1: model 'vol': triton_version: the package does not hold in torch 2.11, which Triton " \
           "26.03's image ships: torch 2.11" in result.err
    assert "undefined symbol: aoti_torch_cpu_grid_sampler_3d" in result.err
    assert "target_torch: \"2.11\"" in result.err
