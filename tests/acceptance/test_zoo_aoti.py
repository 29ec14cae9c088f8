"""The zoo (tests/zoo/) on the default path, export: aoti for 26.11 (the traced zoo is test_zoo.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import run_cli

pytestmark = [pytest.mark.slow, pytest.mark.tritonserver]


def test_the_zoo_on_the_default_path_builds_serves_verifies_and_checks(zoo: Path) -> None:
    """export: aoti for 26.11: transformers outputs and dicts named after their keys, a minimum length, a causal
    LM from a folder with the bound it takes; each with its guards, served by NVIDIA's PyTorch backend."""
    built = run_cli("build", "--manifest", str(zoo / "aoti.yaml"), "--output", str(zoo / "aoti"))
    assert built.code == 0, built.err
    assert len([line for line in built.out.splitlines() if " built in " in line]) == 6
    out = built.out
    assert "output RESULT[logits] TYPE_FP32 [5]" in out  # vit: ImageClassifierOutput
    assert "output RESULT[embedding] TYPE_FP32 [4]" in out  # dict_heads: a plain dict
    assert "output RESULT[aux] TYPE_FP32 [4, -1, -1]" in out  # segmenter: an OrderedDict
    assert "ARGS[0] dim 0 takes at least 10" in out  # audio: the convolution's kernel
    assert "takes at most 64 (eager PyTorch fails at 65" in out  # gpt2: its 64 position embeddings
    assert "guard  ARGS[0]: values in [0, 100) (an embedding of 100 rows)" in out
    verified = run_cli("verify", "--manifest", str(zoo / "aoti.yaml"), "--repository", str(zoo / "aoti"))
    assert verified.code == 0, verified.out
    lines = verified.out.splitlines()
    for name in ("vit", "distilbert_classifier", "dict_heads", "segmenter", "audio", "gpt2"):
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
