"""Emitted configs parse with the target release's own ModelConfig schema (from its tritonclient wheel)."""

from __future__ import annotations

from pathlib import Path

from compiler.releases import Release
from compiler.triton_config.release_schema import parse_for_release, tritonclient_version
from tests.helpers import Project, run_cli

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


def test_release_to_tritonclient_version() -> None:
    assert tritonclient_version(Release.parse("22.02")) == "2.19.0"
    assert tritonclient_version(Release.parse("24.10")) == "2.51.0"  # the embedded server is 2.51


def test_golden_configs_parse_with_the_2410_schema() -> None:
    texts = {p.stem: p.read_text() for p in GOLDEN.glob("*.pbtxt")}
    assert parse_for_release(texts, Release.parse("24.10")) == {}


def test_a_2202_target_builds_configs_that_2202_parses(project: Project) -> None:
    project.write("""
        triton_version: "22.02"
        models:
          - name: m
            source: {python: "tiny_models:two_outputs"}
            max_batch_size: 4
            dynamic_batching: {max_queue_delay_microseconds: 100}
            parameters: {INFERENCE_MODE: true}
            inputs: [{name: INPUT__0, dtype: FP32, dims: [-1], example: {shape: [6]}}]
    """)
    assert project.build().code == 0
    text = (project.output / "m" / "config.pbtxt").read_text()
    assert parse_for_release({"m": text}, Release.parse("22.02")) == {}


def test_the_2202_schema_rejects_newer_fields() -> None:
    errors = parse_for_release({"new": 'name: "m"\nmodel_metrics { }\n', "bf16": "input { data_type: TYPE_BF16 }\n"},
                               Release.parse("22.02"))
    assert set(errors) == {"new", "bf16"}
    assert "model_metrics" in errors["new"]


def test_check_uses_the_release_schema(tmp_path: Path) -> None:
    folder = tmp_path / "models" / "m"
    (folder / "1").mkdir(parents=True)
    (folder / "config.pbtxt").write_text('name: "m"\nplatform: "pytorch_libtorch"\nruntime: "model.py"\n'
                                         'input { name: "INPUT__0" data_type: TYPE_FP32 dims: 4 }\n'
                                         'output { name: "OUTPUT__0" data_type: TYPE_FP32 dims: 4 }\n')
    result = run_cli("check", str(tmp_path / "models"), "--triton-version", "22.02", "--no-run")
    assert result.code == 1
    assert "Triton 22.02's own schema rejects the config" in result.out and 'no field named "runtime"' in result.out
