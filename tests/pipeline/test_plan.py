"""Pipelines wired without any model: the committed manifest's two, and the ensemble config built from them."""

from __future__ import annotations

from compiler.manifest import load_manifest
from compiler.manifest.wiring import plan_all
from compiler.triton_config import to_text
from compiler.triton_config.builder import ensemble_config
from tests.helpers import ROOT


def test_the_committed_pipelines_are_wired_by_name_and_role() -> None:
    embed, images = plan_all(load_manifest(ROOT / "models.yaml"))
    assert [(s.kind, s.model) for s in embed.steps] == [("tokenize", "embed_tokenize"), ("model", "bert"),
                                                        ("pool", "embed_pool")]
    tokenize, model, pool = embed.steps
    assert tokenize.input_map == {"TEXT": "TEXT"}
    assert [t.name for t in tokenize.outputs] == ["input_ids", "attention_mask", "token_type_ids"]
    assert model.input_map == {name: name for name in ("input_ids", "attention_mask", "token_type_ids")}
    # pool reads the model's token vectors and the tokenizer's mask (by role); the pooled output nobody reads is
    # left unmapped, as Triton refuses an unused ensemble tensor
    assert pool.input_map == {"hidden": "last_hidden_state__0", "mask": "attention_mask"}
    assert model.output_map == {"last_hidden_state__0": "last_hidden_state__0"}
    assert [(t.name, t.dtype, t.dims) for t in embed.outputs] == [("EMBEDDING", "TYPE_FP32", [384])]
    assert [(t.name, t.dtype, t.dims) for t in images.inputs] == [("IMAGE", "TYPE_STRING", [1])]
    assert [(t.name, t.dtype, t.labels) for t in images.outputs] == [
        ("PROBABILITIES", "TYPE_FP32", "labels.txt"), ("SCORES", "TYPE_FP32", None), ("CLASSES", "TYPE_INT64", None)]
    assert images.steps[2].input_map == {"logits": "OUTPUT__0"}


def test_the_ensemble_config_is_built_through_model_config() -> None:
    embed = plan_all(load_manifest(ROOT / "models.yaml"))[0]
    text = to_text(ensemble_config(embed.name, 16, embed.inputs, embed.outputs,
                                   [(s.model, s.input_map, s.output_map) for s in embed.steps]))
    assert 'platform: "ensemble"' in text and "ensemble_scheduling" in text
    assert 'model_name: "embed_tokenize"' in text and "model_version: -1" in text
