"""Export and proof, driven through the real `build` command on tiny models."""

from __future__ import annotations

import json

import torch

from compiler.triton_config import parse_text
from tests.helpers import Project, run_subprocess


def _one(source: str, inputs: str, extra: str = "", batch: int = 4) -> str:
    return f"""
    models:
      - name: m
        source: {source}
        max_batch_size: {batch}
        inputs:
{inputs}
{extra}
    """


X_VAR = "          - {name: x, dtype: FP32, dims: [-1], example: {shape: [8]}}"


def test_baked_size_is_rejected_naming_the_dim(project: Project) -> None:
    project.write(_one('{python: "tiny_models:baked_size"}', X_VAR))
    result = project.build()
    assert result.code == 1
    assert "x dim 0 (declared -1): traced at 8, at 6" in result.err
    assert "export: script" in result.err
    assert "Traceback" not in result.text
    assert not project.output.exists()


def test_baked_size_builds_when_scripted(project: Project) -> None:
    project.write(_one('{python: "tiny_models:baked_size"}', X_VAR, "        export: script"))
    result = project.build()
    assert result.code == 0, result.err
    config = parse_text((project.output / "m" / "config.pbtxt").read_text())
    assert list(config.output[0].dims) == [1]


def test_baked_batch_is_rejected(project: Project) -> None:
    project.write(_one('{python: "tiny_models:baked_batch"}', "          - {name: x, dtype: FP32, dims: [3]}"))
    result = project.build()
    assert result.code == 1
    assert "batch dim: traced at batch 2, at batch 1" in result.err


def test_data_dependent_branch_is_rejected_naming_the_input(project: Project) -> None:
    project.write(_one('{python: "tiny_models:branchy"}', "          - {name: x, dtype: FP32, dims: [16]}"))
    result = project.build()
    assert result.code == 1
    assert "new values of x" in result.err
    assert "one side of a branch" in result.err
    project.write(_one('{python: "tiny_models:branchy"}', "          - {name: x, dtype: FP32, dims: [16]}",
                       "        export: script"))
    assert project.build().code == 0


def test_nondeterministic_model_is_rejected(project: Project) -> None:
    project.write(_one('{python: "tiny_models:noisy"}', "          - {name: x, dtype: FP32, dims: [3]}"))
    result = project.build()
    assert result.code == 1
    assert "on the very inputs it was traced with" in result.err


def test_outputs_are_derived_with_variable_dims_and_scalar_reshape(project: Project) -> None:
    project.write(_one('{python: "tiny_models:two_outputs"}', X_VAR))
    result = project.build()
    assert result.code == 0, result.err
    config = parse_text((project.output / "m" / "config.pbtxt").read_text())
    first, second = config.output
    assert (first.name, list(first.dims), first.HasField("reshape"), list(first.reshape.shape)) == (
        "OUTPUT__0", [1], True, [])
    assert (second.name, list(second.dims)) == ("OUTPUT__1", [-1])
    from tritonclient.grpc import model_config_pb2 as pb
    assert second.data_type == pb.TYPE_FP16


def test_a_scalar_output_without_a_batch_dim_is_refused(project: Project) -> None:
    """Triton refuses dims [1] with an empty reshape when max_batch_size is 0 (tests/check/cases/
    output_empty_reshape_without_batching): the build says so instead of writing a config that never loads."""
    project.write(_one('{python: "tiny_models:two_outputs"}', X_VAR, batch=0))
    result = project.build()
    assert result.code == 1
    assert "output 0 is a scalar (a 0-d tensor) and the model has no batch dim" in result.err
    assert "x.reshape(1)" in result.err


def test_declared_outputs_that_disagree_quote_both(project: Project) -> None:
    extra = ("        outputs:\n          - {name: OUTPUT__0, dtype: FP32, dims: [5]}\n"
             "          - {name: OUTPUT__1, dtype: FP32, dims: [-1]}")
    project.write(_one('{python: "tiny_models:two_outputs"}', X_VAR, extra))
    result = project.build()
    assert result.code == 1
    assert "output 'OUTPUT__0' declared TYPE_FP32 [5], the model gives TYPE_FP32 []" in result.err
    assert "output 'OUTPUT__1' declared TYPE_FP32 [-1], the model gives TYPE_FP16 [-1]" in result.err


def test_declared_output_count_must_match(project: Project) -> None:
    extra = "        outputs:\n          - {name: OUTPUT__0, dtype: FP32, dims: [3]}"
    project.write(_one('{python: "tiny_models:affine"}', "          - {name: x, dtype: FP32, dims: [4]}", extra))
    assert project.build().code == 0
    extra = "        outputs:\n          - {name: OUTPUT__0, dtype: FP32, dims: [3]}\n          - {name: OUTPUT__1, dtype: FP32, dims: [3]}"
    project.write(_one('{python: "tiny_models:affine"}', "          - {name: x, dtype: FP32, dims: [4]}", extra))
    result = project.build()
    assert result.code == 1 and "2 outputs declared, the model returns 1" in result.err


BERT_NAMES = """          - {name: token_type_ids, dtype: INT64, dims: [-1], example: {shape: [5], high: 2}}
          - {name: input_ids, dtype: INT64, dims: [-1], example: {shape: [5], high: 1000}}
          - {name: attention_mask, dtype: INT64, dims: [-1], example: {shape: [5], high: 2}}"""


def test_inputs_bind_by_forward_argument_name_in_any_config_order(project: Project) -> None:
    project.write(_one('{python: "tiny_models:bert_like"}', BERT_NAMES))
    result = project.build()
    assert result.code == 0, result.err
    for name in ("token_type_ids", "input_ids", "attention_mask"):
        assert f"input  {name} -> forward({name})" in result.out
    scripted = torch.jit.load(str(project.output / "m" / "1" / "model.pt"))
    args = [a.name for a in scripted.forward.schema.arguments[1:]]
    assert args == ["input_ids", "attention_mask", "token_type_ids"]
    record = json.loads((project.output / "m" / "build.json").read_text())
    assert record["binding"]["convention"] == "FORWARD_ARGUMENT"


def test_named_index_binds_by_position_and_is_printed(project: Project) -> None:
    inputs = """          - {name: INPUT__1, dtype: INT64, dims: [5], example: {high: 2}}
          - {name: INPUT__0, dtype: INT64, dims: [5], example: {high: 1000}}
          - {name: INPUT__2, dtype: INT64, dims: [5], example: {high: 2}}"""
    project.write(_one('{python: "tiny_models:bert_like"}', inputs))
    result = project.build()
    assert result.code == 0, result.err
    assert "input  INPUT__0 -> forward(input_ids)" in result.out
    assert "input  INPUT__1 -> forward(attention_mask)" in result.out
    assert "input  INPUT__2 -> forward(token_type_ids)" in result.out


def test_named_index_must_number_every_argument_once(project: Project) -> None:
    inputs = """          - {name: INPUT__0, dtype: INT64, dims: [5]}
          - {name: INPUT__2, dtype: INT64, dims: [5]}
          - {name: INPUT__2x, dtype: INT64, dims: [5]}"""
    project.write(_one('{python: "tiny_models:bert_like"}', inputs))
    result = project.build()
    assert result.code == 1
    assert "neither arguments of forward(input_ids, attention_mask, token_type_ids) nor <name>__<index>" in result.err


def test_unbound_argument_is_rejected(project: Project) -> None:
    inputs = "          - {name: a, dtype: FP32, dims: [2]}\n          - {name: b, dtype: FP32, dims: [2]}"
    project.write(_one('{python: "tiny_models:needs_three"}', inputs))
    result = project.build()
    assert result.code == 1
    assert "argument(s) ['c'] have no input" in result.err


def test_input_names_of_neither_convention_are_rejected(project: Project) -> None:
    inputs = "\n".join(f"          - {{name: {n}, dtype: FP32, dims: [2]}}" for n in ("first", "second", "third"))
    project.write(_one('{python: "tiny_models:needs_three"}', inputs))
    result = project.build()
    assert result.code == 1
    assert "Triton would silently bind inputs in config order" in result.err


def test_torchscript_source_is_validated_and_placed(project: Project) -> None:
    from tests.fixtures.tiny_models import TwoOutputs

    torch.jit.script(TwoOutputs()).save(str(project.root / "given.pt"))
    project.write(_one("{torchscript: given.pt}", X_VAR))
    result = project.build()
    assert result.code == 0, result.err
    assert (project.output / "m" / "1" / "model.pt").is_file()
    assert "OUTPUT__1 TYPE_FP16 [-1]" in result.out


ONES = "          - {name: x, dtype: FP32, dims: [3]}"


def test_a_cpu_baked_trace_is_refused_for_gpu_instances(project: Project) -> None:
    project.write(_one('{python: "tiny_models:makes_ones"}', ONES, "        instance_group: [{kind: KIND_GPU}]"))
    result = project.build()
    assert result.code == 1
    assert 'tracing froze torch.device("cpu")' in result.err and "KIND_GPU" in result.err


def test_a_cpu_baked_trace_warns_without_instance_group(project: Project) -> None:
    project.write(_one('{python: "tiny_models:makes_ones"}', ONES))
    result = project.build()
    assert result.code == 0
    assert "warning: tracing froze" in result.out and "KIND_CPU" in result.out
    record = json.loads((project.output / "m" / "build.json").read_text())
    assert record["warnings"]


def test_a_cpu_baked_trace_is_fine_on_cpu_instances(project: Project) -> None:
    project.write(_one('{python: "tiny_models:makes_ones"}', ONES, "        instance_group: [{kind: KIND_CPU}]"))
    result = project.build()
    assert result.code == 0 and "    warning:" not in result.out  # none for the model (the build-wide libtorch one aside)


def test_a_failed_torch_export_is_summarised_and_its_chatter_kept_in_the_log(project: Project) -> None:
    project.write("""
        triton_version: "26.11"
        models:
          - name: m
            source: {python: "tiny_models:branchy"}
            export: aoti
            inputs: [{name: INPUT__0, dtype: FP32, dims: [16]}]
    """)
    result = run_subprocess("-m", "compiler", "build", "--manifest", str(project.manifest), "--output",
                            str(project.output))  # as a user runs it: torch logs to the process's stderr
    assert result.code == 1
    assert "model 'm': export: torch.export failed: GuardOnDataDependentSymNode" in result.err
    assert "rewrite it with torch.cond" in result.err
    assert "Unable to find user code" not in result.err and len(result.err.splitlines()) < 12
    log = (project.root / ".repo.logs" / "m.log").read_text()
    assert "Unable to find user code corresponding to {u0}" in log  # torch's own words, kept


def test_a_failed_torch_export_names_the_fix_for_its_cause() -> None:
    """The zoo's three models without a torch.export path fail for three causes, each with its own fix."""
    from compiler.export.aoti import export_hint

    quantized = AttributeError("__torch__.torch.classes.quantized.LinearPackedParamsBase (of Python compilation "
                               "unit at: 0) does not have a field with name '__obj_flatten__'")
    assert "quantize_pt2e" in export_hint(quantized)
    data_dependent = RuntimeError("GuardOnDataDependentSymNode: Could not guard on data-dependent expression")
    assert "torch.cond" in export_hint(data_dependent)
    other = NotImplementedError("an operator without a meta kernel")
    assert "torch.cond" not in export_hint(other) and "export: trace" in export_hint(other)
