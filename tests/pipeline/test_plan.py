"""Pipelines wired without any model: the committed manifest's two, as written and fused (`fuse:`), and the
ensemble config built from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.errors import ManifestError
from compiler.manifest import LoadedManifest, load_manifest
from compiler.manifest.pipelines import STEP_KINDS
from compiler.manifest.step_settings import EncoderSettings, TokenizeSettings, settings_of
from compiler.manifest.wiring import PLANNERS, plan_all
from compiler.triton_config import to_text
from compiler.triton_config.builder import ensemble_config
from tests.helpers import ROOT

COMMITTED = (ROOT / "models.yaml").read_text()


def _committed(tmp_path: Path, old: str = "", new: str = "") -> LoadedManifest:
    """The committed manifest with `old` replaced by `new`."""
    assert old in COMMITTED
    path = tmp_path / "models.yaml"
    path.write_text(COMMITTED.replace(old, new, 1))
    return load_manifest(path)


EMBED = "  - name: embed\n    max_batch_size: 16\n"


def test_the_committed_pipelines_are_wired_by_name_and_role(tmp_path: Path) -> None:
    embed, texts, images = plan_all(_committed(tmp_path, EMBED, EMBED + "    fuse: false\n"))
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
    # the text classifier (fused: `fuse: false` was given to embed only): the encoder's logits are classify's
    assert [s.kind for s in texts.steps] == ["tokenize", "encoder", "classify"]
    assert texts.steps[2].input_map == {"logits": "logits__0"} and texts.outputs[0].labels == "labels.txt"
    # what a step reads by role is a typed field of its plan; its run-time settings hold only what steps.py reads
    assert pool.reads == {"hidden": "last_hidden_state__0", "mask": "attention_mask"} and not pool.upstream_unknown
    assert all(not key.startswith("_") for plan in (embed, texts, images) for step in plan.steps
               for key in step.settings)


def test_each_step_kind_has_its_planner() -> None:
    assert set(PLANNERS) == set(STEP_KINDS) and all(kind == p.kind for kind, p in PLANNERS.items())


def test_the_committed_embed_pipeline_is_fused_into_one_ragged_encoder() -> None:
    """Default: tokenize -> bert -> pool become tokenize -> embed_encoder (the TorchScript bert, ragged, pooled)."""
    embed = plan_all(load_manifest(ROOT / "models.yaml"))[0]
    assert [(s.kind, s.model) for s in embed.steps] == [("tokenize", "embed_tokenize"), ("encoder", "embed_encoder")]
    tokenize, encoder = embed.steps
    assert settings_of(tokenize, TokenizeSettings)["pad"] == "request"  # each request its own length: the encoder merges any lengths
    assert encoder.generated and encoder.manifest_model == "bert"
    assert [(t.name, t.dims) for t in encoder.inputs] == [(n, [-1]) for n in ("input_ids", "attention_mask",
                                                                             "token_type_ids")]
    assert encoder.input_map == {name: name for name in ("input_ids", "attention_mask", "token_type_ids")}
    assert [(t.name, t.dtype, t.dims) for t in encoder.outputs] == [("EMBEDDING", "TYPE_FP32", [384])]
    settings = settings_of(encoder, EncoderSettings)
    assert (settings["hidden"], settings["mask"], settings["mode"], settings["normalize"], settings["lengths"]) == (
        "last_hidden_state__0", "attention_mask", "mean", True, "lengths")
    assert settings["keys"]["input_ids"] == "input_ids"
    assert [(t.name, t.dims) for t in embed.outputs] == [("EMBEDDING", [384])]
    assert "embed_encoder" not in embed.models and embed.models == ["bert"]


def test_a_classifier_after_the_model_reads_the_encoders_own_output(tmp_path: Path) -> None:
    """No pool step: the encoder returns the outputs later steps read (pooler_output, [384]), named for their place
    in its result, and the classify step reads them under the pipeline's tensor name as before."""
    loaded = _committed(tmp_path, "      - pool: {mode: mean, normalize: true}\n", "      - classify: {top_k: 3}\n")
    embed = plan_all(loaded)[0]
    assert [s.kind for s in embed.steps] == ["tokenize", "encoder", "classify"]
    encoder, classify = embed.steps[1:]
    assert [(t.name, t.dims) for t in encoder.outputs] == [("pooler_output__0", [384])]
    assert encoder.output_map == {"pooler_output__0": "pooler_output__1"}
    assert settings_of(encoder, EncoderSettings)["outputs"] == ["pooler_output__1"]
    assert classify.input_map == {"logits": "pooler_output__1"}


AOTI_BERT = [("    export: trace\n    max_batch_size: 16\n", "    export: aoti\n    max_batch_size: 16\n")]


@pytest.mark.parametrize(("edits", "why"), [
    (AOTI_BERT, "AOTI-MERGE"),
    ([("      - pool: {mode: mean, normalize: true}\n", "")], "output 'last_hidden_state__0' has a dim per token"),
])
def test_fuse_true_where_the_steps_cannot_be_fused_is_an_error_at_its_line(tmp_path: Path, edits: list[tuple[str, str]],
                                                                            why: str) -> None:
    text = COMMITTED.replace(EMBED, EMBED + "    fuse: true\n", 1)
    for old, new in edits:
        assert old in text
        text = text.replace(old, new, 1)
    path = tmp_path / "models.yaml"
    path.write_text(text)
    with pytest.raises(ManifestError) as caught:
        plan_all(load_manifest(path))
    problem = next(p for p in caught.value.problems if p.model == "embed")  # an aoti bert has problems of its own
    line = text.splitlines().index("    fuse: true") + 1
    assert (problem.model, problem.field, problem.line) == ("embed", "fuse", line)
    assert why in problem.message and "fuse: true, but" in problem.message


def test_without_fuse_true_such_steps_run_as_written(tmp_path: Path) -> None:
    """The pipeline answers the token vectors, [-1, 384] a text: merged texts could not be split back, so no encoder."""
    embed = plan_all(_committed(tmp_path, "      - pool: {mode: mean, normalize: true}\n"))[0]
    assert [s.kind for s in embed.steps] == ["tokenize", "model"]
    assert "pad" not in embed.steps[0].settings and embed.outputs[0].dims == [-1, 384]


def test_the_ensemble_config_is_built_through_model_config() -> None:
    embed = plan_all(load_manifest(ROOT / "models.yaml"))[0]
    text = to_text(ensemble_config(embed.name, 16, embed.inputs, embed.outputs,
                                   [(s.model, s.input_map, s.output_map) for s in embed.steps]))
    assert 'platform: "ensemble"' in text and "ensemble_scheduling" in text
    assert 'model_name: "embed_tokenize"' in text and "model_version: -1" in text
