"""A GPT-2 tokenizer has no padding token: a text pipeline around it pads with its end-of-text token (the documented
default, or `tokenize.pad_token`), and the attention mask makes the choice harmless. Built, proved and served:
every text's embedding equals GPT-2 run on that text alone (no padding at all), computed here with transformers, and
an empty text gets a zero vector."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from compiler.server.session import embedded_server
from tests.helpers import FIXTURES, Project, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.tritonserver]

MANIFEST = """
triton_version: "26.11"
models:
  - name: gpt
    source: {transformers: gpt}
    export: trace
    max_batch_size: 4
    inputs:
      - {name: input_ids, dtype: INT64, dims: [-1], example: {shape: [8], high: 8}}
      - {name: attention_mask, dtype: INT64, dims: [-1], example: {shape: [8], low: 1, high: 2}}
    dynamic_batching: {max_queue_delay_microseconds: 20000}
    instance_group: [{kind: KIND_CPU}]
pipelines:
  - name: gpt_embed
    max_batch_size: 4
    steps:
      - tokenize: {model: gpt, max_length: 16}
      - model: gpt
      - pool: {mode: mean, normalize: true}
    example: {texts: ["hello world", "", "a longer text than one"]}
"""
TEXTS = ["hello world", "", "a longer text than one", "text"]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    project = Project.at(tmp_path_factory.mktemp("gpt2"))
    sys.path.insert(0, str(FIXTURES))
    try:
        from tiny_models import save_tiny_gpt2

        save_tiny_gpt2(str(project.root / "gpt"))
    finally:
        sys.path.remove(str(FIXTURES))
    return project.built(MANIFEST)


def _alone(project: Project, text: str) -> np.ndarray:
    """GPT-2 on the text's own tokens, no padding, mean-pooled and normalised: transformers, not the pipeline."""
    from transformers import AutoTokenizer, GPT2Model

    tokenizer = AutoTokenizer.from_pretrained(str(project.root / "gpt"))
    ids = tokenizer(text)["input_ids"]
    if not ids:
        return np.zeros(16, dtype=np.float32)
    model = GPT2Model.from_pretrained(str(project.root / "gpt")).eval()
    with torch.no_grad():
        hidden = model(torch.tensor([ids])).last_hidden_state[0]
    pooled = hidden.mean(dim=0)
    return (pooled / pooled.norm()).numpy()


def test_padding_with_the_end_of_text_token_answers_as_each_text_alone(project: Project) -> None:
    import tritonclient.http as http

    with embedded_server(project.output) as (server, _):
        client = http.InferenceServerClient(server.http_url)
        item = http.InferInput("TEXT", [len(TEXTS), 1], "BYTES")
        item.set_data_from_numpy(np.array([[t.encode()] for t in TEXTS], dtype=object))
        served = client.infer("gpt_embed", [item]).as_numpy("EMBEDDING")
    for text, vector in zip(TEXTS, served):
        np.testing.assert_allclose(vector, _alone(project, text), atol=1e-5)
    assert not served[1].any()  # the empty text: a zero vector


def test_verify_and_a_named_pad_token(project: Project) -> None:
    verified = run_cli("verify", "--manifest", str(project.manifest), "--repository", str(project.output))
    assert verified.code == 0, verified.out + verified.err
    named = MANIFEST.replace("max_length: 16}", "max_length: 16, pad_token: '[UNK]'}")
    project.write(named)
    rebuilt = project.build()
    assert rebuilt.code == 0, rebuilt.out + rebuilt.err
    step = (project.output / "gpt_embed_tokenize" / "1" / "step.json").read_text()
    assert '"pad_token": "[UNK]"' in step and '"pad_id": 5' in step
