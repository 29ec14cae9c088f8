"""`profile`: Model Analyzer's quick sweep of a tiny model against the embedded tritonserver, its best configuration
written back as a manifest snippet that the manifest accepts."""

from __future__ import annotations

import pytest
from ruamel.yaml import YAML

from compiler.manifest import load_manifest
from compiler.profiling.writer import profiling_folder
from tests.helpers import Project, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.tritonserver]

MANIFEST = """
triton_version: "24.10"
models:
  - name: affine
    source: {python: "tiny_models:affine"}
    max_batch_size: 8
    inputs: [{name: INPUT__0, dtype: FP32, dims: [4]}]
    dynamic_batching: {max_queue_delay_microseconds: 100}
    instance_group: [{kind: KIND_CPU}]
"""


def test_model_analyzer_quick_sweep_gives_a_variant(project: Project) -> None:
    project.built(MANIFEST)
    result = run_cli("profile", "affine", "--repository", str(project.output), "--quick")
    assert result.code == 0, result.err + result.out
    # the default config and 4 swept ones (2 delays x 1 or 2 instances), each at concurrency 1 and 2
    assert "affine: best of 10 measurements" in result.out
    work = profiling_folder(project.output) / "affine" / "model_analyzer"
    assert (work / "reports" / "results" / "metrics-model-inference.csv").is_file()
    snippet = YAML(typ="safe").load((work / "variants.yaml").read_text())
    variant = snippet["variants"]["profiled"]
    assert variant["max_batch_size"] == 8 and variant["instance_group"][0]["count"] in (1, 2)
    assert variant["dynamic_batching"]["max_queue_delay_microseconds"] in (0, 100)
    project.manifest.write_text(project.manifest.read_text() + "    variants:\n      profiled: "
                                + str(variant).replace("'", "") + "\n")
    assert "profiled" in (load_manifest(project.manifest).manifest.models[0].variants or {})
