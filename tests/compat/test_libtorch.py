"""The target release's libtorch: the version table, and what build and check say about a model."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from compiler.compat.fit import assess
from compiler.compat.pytorch_versions import (
    LIBTORCH_BY_RELEASE,
    TorchVersion,
    first_release_with_at_least,
    libtorch_of,
)
from compiler.compat.torchscript import SavedBy, operators, saved_by_lower_bound
from compiler.releases import EMBEDDED_RELEASE, Release
from tests.helpers import Project, run_cli

TORCH = TorchVersion.parse(torch.__version__)
ONE_MODEL = """
triton_version: "{release}"
models:
  - name: m
    source: {{python: "tiny_models:{factory}"}}
    max_batch_size: 2
    inputs: [{{name: INPUT__0, dtype: FP32, dims: [{dims}], example: {{shape: [{shape}]}}}}]
"""


def _manifest(release: str, factory: str = "affine", dims: str = "4", shape: str = "4") -> str:
    return ONE_MODEL.format(release=release, factory=factory, dims=dims, shape=shape)


def test_the_table_covers_the_releases_we_serve_and_check() -> None:
    for release in (EMBEDDED_RELEASE, "22.02"):  # the embedded server's, and the seed's
        assert libtorch_of(Release.parse(release)) is not None
    for release, version in LIBTORCH_BY_RELEASE.items():
        Release.parse(release), TorchVersion.parse(version)  # each row is well formed


def test_suggested_release_really_ships_a_libtorch_as_new() -> None:
    for text in sorted(set(LIBTORCH_BY_RELEASE.values())):
        wanted = TorchVersion.parse(text)
        first = first_release_with_at_least(wanted)
        assert first is not None
        later = [Release.parse(r) for r in LIBTORCH_BY_RELEASE if Release.parse(r) >= first]
        assert all(libtorch_of(r) >= wanted for r in later)  # type: ignore[operator]
    assert first_release_with_at_least(TorchVersion(99, 0)) is None


def test_a_file_saved_today_reveals_a_lower_bound(tmp_path: Path) -> None:
    path = tmp_path / "m.pt"
    torch.jit.trace(torch.nn.Linear(2, 2), torch.rand(1, 2)).save(str(path))
    bound = saved_by_lower_bound(path)
    assert bound is not None and not bound.exact and TorchVersion(2, 1) <= bound.version <= TORCH
    assert "byteorder" in bound.evidence or "serialization_id" in bound.evidence
    (tmp_path / "junk.pt").write_bytes(b"not a zip")
    assert saved_by_lower_bound(tmp_path / "junk.pt") is None


def test_operators_are_found_in_nested_blocks_and_submodules() -> None:
    class Inner(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.tanh(x)

    class Outer(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = Inner()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if bool(x.sum() > 0):
                return self.inner(torch.sigmoid(x))
            return x

    found = operators(torch.jit.script(Outer()))
    assert {"aten::tanh", "aten::sigmoid", "aten::sum"} <= found
    assert not any(op.startswith("prim::") for op in found)


def test_newer_saving_torch_is_a_warning_naming_both_versions() -> None:
    old = Release.parse("22.02")
    fit = assess(old, SavedBy(TorchVersion(2, 3), True, "build"), {"aten::linear"})
    assert not fit.errors and len(fit.warnings) == 1
    text = fit.warnings[0].message + fit.warnings[0].hint  # type: ignore[operator]
    assert f"Triton 22.02 ships libtorch {libtorch_of(old)}" in text
    assert f"Triton {first_release_with_at_least(TorchVersion(2, 3))} or later (libtorch 2.3 or newer)" in text
    same = assess(old, SavedBy(libtorch_of(old), True, "build"), {"aten::linear"})  # type: ignore[arg-type]
    assert not same.errors and not same.warnings


def test_build_for_22_02_names_the_libtorch_mismatch(project: Project) -> None:
    project.write(_manifest("22.02"))
    result = project.build()
    assert result.code == 0, result.err
    assert f"saved by torch {TORCH}; Triton 22.02 ships libtorch 1.11" in result.out
    assert "export with torch 1.11.* to target 22.02" in result.out
    record = json.loads((project.output / "m" / "build.json").read_text())
    assert record["torch_version"] == torch.__version__
    again = project.build()  # unchanged, and still says so
    assert "unchanged" in again.out and "Triton 22.02 ships libtorch 1.11" in again.out
    check = run_cli("check", str(project.output), "--triton-version", "22.02")
    assert check.code == 0 and "Triton 22.02 ships libtorch 1.11" in check.out


def test_an_operator_the_target_lacks_fails_the_build_at_triton_version(project: Project) -> None:
    project.write(_manifest("22.02", "attention", "-1, 8", "3, 8"))
    result = project.build()
    assert result.code == 1
    assert "models.yaml:1:" in result.err  # the triton_version line
    assert "calls aten::scaled_dot_product_attention, new in torch 2.0; libtorch 1.11 of Triton 22.02" in result.err
    assert "target Triton 23.03 or later (libtorch 2.0 or newer)" in result.err
    assert not project.output.exists()
    project.write(_manifest("24.10", "attention", "-1, 8", "3, 8"))
    assert project.build().code == 0


def test_custom_operators_are_flagged_by_build_and_check(project: Project) -> None:
    project.write(_manifest(EMBEDDED_RELEASE, "custom_op"))
    result = project.build()
    assert result.code == 0, result.err
    assert "custom operator tinyops::twice" in result.out and "LD_PRELOAD" in result.out
    check = run_cli("check", str(project.output), "--format", "json")
    findings = json.loads(check.out)["findings"]
    assert any(f["severity"] == "warning" and "tinyops::twice" in f["message"] for f in findings)


def test_torchvision_operators_are_noted_as_provided_by_ngc_images(tmp_path: Path) -> None:
    import torchvision

    class Boxes(torch.nn.Module):
        def forward(self, boxes: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
            return torchvision.ops.nms(boxes, scores, 0.5)

    repo = tmp_path / "models"
    (repo / "nms" / "1").mkdir(parents=True)
    torch.jit.script(Boxes()).save(str(repo / "nms" / "1" / "model.pt"))
    (repo / "nms" / "config.pbtxt").write_text(
        'name: "nms"\nplatform: "pytorch_libtorch"\n'
        'input { name: "boxes" data_type: TYPE_FP32 dims: [-1, 4] }\n'
        'input { name: "scores" data_type: TYPE_FP32 dims: [-1] }\n'
        'output { name: "OUTPUT__0" data_type: TYPE_INT64 dims: [-1] }\n')
    result = run_cli("check", str(repo), "--triton-version", "24.10", "--format", "json")
    notes = [f for f in json.loads(result.out)["findings"] if "torchvision::nms" in f["message"]]
    assert notes and notes[0]["severity"] == "info"
