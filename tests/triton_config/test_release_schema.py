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
    assert parse_for_release(texts, Release.parse("24.10")).errors == {}


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
    assert parse_for_release({"m": text}, Release.parse("22.02")).errors == {}


def test_the_2202_schema_rejects_newer_fields() -> None:
    errors = parse_for_release({"new": 'name: "m"\nmodel_metrics { }\n', "bf16": "input { data_type: TYPE_BF16 }\n"},
                               Release.parse("22.02")).errors
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


def test_a_release_whose_tritonclient_was_never_published_is_parsed_with_the_newest_earlier_schema() -> None:
    parsed = parse_for_release({"m": 'name: "m"\nmodel_metrics { }\n'}, Release.parse("26.11"))
    assert (parsed.errors, str(parsed.schema_release)) == ({}, "26.09")  # 2.75.0 and 2.74.0 are not on PyPI


def test_check_never_downloads_a_schema(tmp_path: Path) -> None:
    """The pre-commit hook runs offline: an empty cache is a warning that names `make setup`, not a download."""
    import os
    import subprocess
    import sys

    folder = tmp_path / "models" / "m"
    (folder / "1").mkdir(parents=True)
    (folder / "config.pbtxt").write_text('name: "m"\nbackend: "identity"\n'
                                         'input { name: "INPUT0" data_type: TYPE_FP32 dims: 4 }\n'
                                         'output { name: "OUTPUT0" data_type: TYPE_FP32 dims: 4 }\n')
    env = {**os.environ, "TRITON_COMPILER_CACHE": str(tmp_path / "empty-cache"), "PIP_INDEX_URL": "http://127.0.0.1:9/"}
    done = subprocess.run([sys.executable, "-m", "compiler", "check", str(tmp_path / "models"), "--no-run",
                           "--triton-version", "24.10"], capture_output=True, text=True, env=env, timeout=120)
    assert "the exact schema of Triton 24.10 was not checked" in done.stdout and "make setup" in done.stdout, done.stdout
    assert not (tmp_path / "empty-cache").exists()
