"""`config:` end to end: raw ModelConfig fields reach config.pbtxt, held to the target release's own schema."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.triton_config import parse_text
from tests.helpers import Project

pytestmark = pytest.mark.slow

MANIFEST = """
triton_version: "{release}"
models:
  - name: affine
    source: {{python: "tiny_models:affine"}}
    max_batch_size: 4
    inputs: [{{name: x, dtype: FP32, dims: [4]}}]
    response_cache: true
    config:
      model_transaction_policy: {{decoupled: false}}
      model_metrics: {{}}
"""


def test_raw_fields_are_built_into_the_config_for_a_release_that_has_them(tmp_path: Path) -> None:
    project = Project.at(tmp_path).built(MANIFEST.format(release="26.05"))
    config = parse_text((project.output / "affine" / "config.pbtxt").read_text())
    assert config.response_cache.enable and config.HasField("model_metrics")  # a typed key and a raw field
    assert config.HasField("model_transaction_policy")
    assert config.max_batch_size == 4  # the manifest's own keys as before


def test_a_raw_field_the_target_release_lacks_is_refused_at_its_line(tmp_path: Path) -> None:
    """model_metrics is not in Triton 24.10's ModelConfig (tritonclient 2.51.0's model_config.proto)."""
    project = Project.at(tmp_path)
    project.write(MANIFEST.format(release="24.10"))
    result = project.build()
    assert result.code == 1
    line = next(n for n, text in enumerate(project.manifest.read_text().splitlines(), 1) if "config:" in text)
    assert f"models.yaml:{line}" in result.err and 'no field named "model_metrics"' in result.err, result.err
    assert not (project.output / "affine").exists()
