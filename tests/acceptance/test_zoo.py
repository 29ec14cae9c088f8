"""The zoo (tests/zoo/) traced: the kinds of models users bring build, serve in the real tritonserver and verify
against eager PyTorch; the ones without a direct path are refused, naming the recipe (docs/proof.md) that serves them.
The default path (export: aoti) is test_zoo_aoti.py: two modules, so that parallel workers take one each."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import ROOT, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.tritonserver]


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
