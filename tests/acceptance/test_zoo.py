"""The zoo (tests/zoo/): the kinds of models users bring build, serve in the real tritonserver and verify against
eager PyTorch; the ones without a direct path are refused, naming the recipe (docs/proof.md) that serves them."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.tritonserver]

ZOO = ROOT / "tests" / "zoo"


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("zoo")
    for item in ZOO.iterdir():
        if item.suffix in (".py", ".yaml"):
            shutil.copy(item, folder / item.name)
    sys.path.insert(0, str(folder))
    try:
        import zoo_models

        zoo_models.save_tiny_gpt2(str(folder / "gpt2"))  # a user's own checkpoint folder
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop("zoo_models", None)
    return folder


def test_the_zoo_builds_serves_and_verifies(zoo: Path) -> None:
    built = run_cli("build", "--manifest", str(zoo / "models.yaml"), "--output", str(zoo / "repo"))
    assert built.code == 0, built.err
    assert len([line for line in built.out.splitlines() if " built in " in line]) >= 12
    assert "output logits__0 TYPE_FP32 [5]" in built.out  # vit: a transformers ImageClassifierOutput
    assert "output embedding__2 TYPE_FP32 [4]" in built.out  # dict_heads: a plain dict
    assert "no dynamic batching: example 0 alone and in a batch of 4 differ" not in built.out  # said in the manifest
    # NHWC convolutions move the detector's scores enough to pick other boxes: the proof refuses, the plain export stays
    assert "detector: optimize: channels_last moved the outputs past the proof's tolerance" in built.err
    assert json.loads((zoo / "repo" / "detector" / "build.json").read_text())["optimized"] == "torch.jit.freeze"
    assert "resnet18: optimize: channels_last (2-D" in built.err and "resnet18: optimize: channels_last moved" not in built.err
    verified = run_cli("verify", "--manifest", str(zoo / "models.yaml"), "--repository", str(zoo / "repo"))
    assert verified.code == 0, verified.out
    lines = verified.out.splitlines()
    assert lines[-1].endswith(" 0 failed")
    checked = run_cli("check", str(zoo / "repo"), "--format", "json")
    report = json.loads(checked.out)  # every file loads (the scripted detector needs torchvision's operators)
    assert report["errors"] == 0, report
    libtorch = [f for f in report["findings"] if "ships libtorch" in f["message"]]
    assert len(libtorch) == 1 and "models: detector, dict_heads" in libtorch[0]["message"]  # said once per run
    for name in ("efficientnet_b0", "vit", "distilbert_classifier", "t5_encoder", "t5_step", "gru_scorer",
                 "quantized_mlp", "optional_scale", "two_heads", "dict_heads", "positives", "detector"):
        assert any(line.startswith(name) and " ok " in line and "grpc" in line for line in lines), name


def test_models_without_a_direct_path_are_refused_with_the_recipe(zoo: Path) -> None:
    result = run_cli("build", "--manifest", str(zoo / "refused.yaml"), "--output", str(zoo / "refused"))
    assert result.code == 1
    assert "model 'raw_detector': inputs: forward() takes 'images' as a list" in result.err
    assert "model 't5_with_cache': outputs: an output is EncoderDecoderCache" in result.err
    assert "config.use_cache = False" in result.err  # the cache: said what to turn off
    assert result.err.count("'Models without a direct path'") == 2
    assert "Models without a direct path" in (ROOT / "docs" / "proof.md").read_text()


def test_the_zoo_on_the_default_path_builds_serves_verifies_and_checks(zoo: Path) -> None:
    """export: aoti for 26.11: transformers outputs and dicts named after their keys, BF16 in and out, a minimum
    length, a causal LM from a folder with the bound it takes; each with its guards."""
    built = run_cli("build", "--manifest", str(zoo / "aoti.yaml"), "--output", str(zoo / "aoti"))
    assert built.code == 0, built.err
    assert len([line for line in built.out.splitlines() if " built in " in line]) == 7
    out = built.out
    assert "output RESULT[logits] TYPE_FP32 [5]" in out  # vit: ImageClassifierOutput
    assert "output RESULT[embedding] TYPE_FP32 [4]" in out  # dict_heads: a plain dict
    assert "output RESULT[aux] TYPE_FP32 [4, -1, -1]" in out  # segmenter: an OrderedDict
    assert "output RESULT TYPE_BF16 [4]" in out  # bf16_mlp
    assert "KWARGS[samples] dim 0 takes at least 10" in out  # audio: the convolution's kernel
    assert "takes at most 64 (eager PyTorch fails at 65" in out  # gpt2: its 64 position embeddings
    assert "guard  KWARGS[input_ids]: values in [0, 100) (an embedding of 100 rows)" in out
    verified = run_cli("verify", "--manifest", str(zoo / "aoti.yaml"), "--repository", str(zoo / "aoti"))
    assert verified.code == 0, verified.out
    lines = verified.out.splitlines()
    for name in ("vit", "distilbert_classifier", "dict_heads", "segmenter", "bf16_mlp", "audio", "gpt2"):
        assert any(line.startswith(name) and "hostile requests" in line and " ok " in line and "grpc" in line
                   for line in lines), name
    checked = json.loads(run_cli("check", str(zoo / "aoti"), "--format", "json").out)
    assert checked["errors"] == 0 and checked["warnings"] == 0, checked  # audio runs at its example's 80 samples


def test_a_dim_torch_export_fixes_is_named_with_what_to_do(zoo: Path) -> None:
    result = run_cli("build", "--manifest", str(zoo / "aoti_refused.yaml"), "--output", str(zoo / "aoti_refused"))
    assert result.code == 1
    assert "aoti_refused.yaml:8: model 'lstm': inputs[0].dims: INPUT__0 dim 0 is declared -1, but torch.export " \
           "fixed it to 6: the model's code turns this size into a constant" in result.err
    assert "declare 6 in dims" in result.err and "the trace baked" not in result.err
