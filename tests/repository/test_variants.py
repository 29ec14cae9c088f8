"""Per-hardware variants: configs/<variant>.pbtxt beside config.pbtxt, each checked like config.pbtxt."""

from __future__ import annotations

import json

from tritonclient.grpc import model_config_pb2 as pb

from compiler.triton_config import parse_text
from tests.helpers import Project, run_cli

VARIANTS = """
models:
  - name: m
    source: {python: "tiny_models:affine"}
    max_batch_size: 4
    inputs: [{name: INPUT__0, dtype: FP32, dims: [4]}]
    parameters: {ENABLE_JIT_PROFILING: false}
    variants:
      cpu:
        instance_group: [{kind: KIND_CPU, count: 3}]
        max_batch_size: 2
      gpu:
        instance_group: [{kind: KIND_GPU, count: 1, gpus: [0]}]
        max_batch_size: 16
        dynamic_batching: {max_queue_delay_microseconds: 300, preferred_batch_size: [8, 16]}
        parameters: {INFERENCE_MODE: true}
"""


def test_each_variant_is_a_config_with_its_overrides(project: Project) -> None:
    project.built(VARIANTS)
    folder = project.output / "m"
    base = parse_text((folder / "config.pbtxt").read_text())
    cpu = parse_text((folder / "configs" / "cpu.pbtxt").read_text())
    gpu = parse_text((folder / "configs" / "gpu.pbtxt").read_text())
    assert sorted(p.name for p in (folder / "configs").iterdir()) == ["cpu.pbtxt", "gpu.pbtxt"]
    assert (base.max_batch_size, cpu.max_batch_size, gpu.max_batch_size) == (4, 2, 16)
    assert not base.instance_group
    assert [(g.kind, g.count) for g in cpu.instance_group] == [(pb.ModelInstanceGroup.KIND_CPU, 3)]
    assert list(gpu.instance_group[0].gpus) == [0]
    assert list(gpu.dynamic_batching.preferred_batch_size) == [8, 16]
    assert cpu.HasField("dynamic_batching")  # proved batch-invariant, inherited as "not asked": enabled
    # parameters merge: the variant adds to the model's
    assert dict(gpu.parameters).keys() == {"ENABLE_JIT_PROFILING", "INFERENCE_MODE"}
    assert [t.name for t in gpu.input] == [t.name for t in base.input]  # tensors are the model's, never overridden
    check = run_cli("check", str(project.output), "--format", "json")
    assert check.code == 0, check.out


def test_a_gpu_variant_of_a_cpu_baked_trace_is_refused_at_its_line(project: Project) -> None:
    project.write("""
        models:
          - name: m
            source: {python: "tiny_models:makes_ones"}
            inputs: [{name: x, dtype: FP32, dims: [3]}]
            instance_group: [{kind: KIND_CPU}]
            variants:
              gpu:
                instance_group: [{kind: KIND_GPU}]
    """)
    result = project.build()
    assert result.code == 1
    assert "models.yaml:8" in result.err and "variants.gpu.instance_group" in result.err


def test_variants_need_a_release_with_model_config_name(project: Project) -> None:
    project.write('triton_version: "24.04"\n' + VARIANTS.lstrip())
    result = project.build()
    assert result.code == 1
    assert "variants need tritonserver --model-config-name, which arrives in 24.05" in result.err


def test_check_reads_variant_configs_too(project: Project) -> None:
    project.built(VARIANTS)
    path = project.output / "m" / "configs" / "cpu.pbtxt"
    path.write_text(path.read_text().replace('data_type: TYPE_FP32\n  dims: 3', 'data_type: TYPE_FP32\n  dims: 7', 1))
    (project.output / "m" / "configs" / "notes.txt").write_text("stray")
    result = run_cli("check", str(project.output), "--format", "json")
    assert result.code == 1
    findings = json.loads(result.out)["findings"]
    assert any(f["file"].endswith("configs/cpu.pbtxt") and f["severity"] == "error" for f in findings), findings
    assert any("notes.txt" in f["message"] for f in findings)
