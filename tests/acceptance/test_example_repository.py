"""The committed models.yaml, built by the real CLI and served by the real tritonserver.

Served answers are compared with eager PyTorch built from the same source (seeded
random weights for ResNet, the packaged all-MiniLM-L6-v2 weights for BERT).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

from compiler.manifest import load_manifest
from compiler.server.process import TritonProcess
from compiler.sources import load_source
from compiler.triton_config import parse_text, to_text
from tests.helpers import ROOT, run_cli, run_subprocess

pytestmark = [pytest.mark.slow, pytest.mark.tritonserver]


@pytest.fixture(scope="module")
def repository(example_repository: Path) -> Path:
    return example_repository


@pytest.fixture(scope="module")
def server(example_server: TritonProcess) -> TritonProcess:
    """Loaded as `serve` loads it: the embedded 24.10 tritonserver predates torch_aoti (load-time override)."""
    return example_server


def _eager(name: str) -> torch.nn.Module:
    loaded = load_manifest(ROOT / "models.yaml")
    spec = next(m for m in loaded.manifest.models if m.name == name)
    return load_source(spec, loaded.directory)


def _tolerance(repository: Path, model: str, output: str) -> tuple[float, float]:
    atol, rtol = json.loads((repository / model / "build.json").read_text())["tolerances"][output]
    return atol, rtol


def test_built_configs_match_the_golden_files(repository: Path) -> None:
    for name, file in (("resnet", "model.pt2"), ("bert", "model.pt")):  # a package; a trace, which batches
        built = parse_text((repository / name / "config.pbtxt").read_text())
        policy = built.dynamic_batching.default_queue_policy
        record = json.loads((repository / name / "build.json").read_text())
        per_execution = built.max_batch_size if record["dynamic_batching"]["config.pbtxt"] == "merge" else 1
        took = record["execution_ms"][str(per_execution)]  # measured here: the one field the golden file cannot hold
        assert policy.max_queue_size == max(16, built.max_batch_size, int(5000 // took) * per_execution)
        policy.max_queue_size = 0
        assert to_text(built) == (ROOT / "tests" / "golden" / f"{name}.pbtxt").read_text()
        assert (repository / name / "1" / file).is_file()
    # the embed pipeline's fused encoder: bert's config with ragged ids, the lengths batch input, EMBEDDING out
    encoder = parse_text((repository / "embed_encoder" / "config.pbtxt").read_text())
    bert = parse_text((repository / "bert" / "config.pbtxt").read_text())
    assert encoder.dynamic_batching.default_queue_policy == bert.dynamic_batching.default_queue_policy
    encoder.dynamic_batching.default_queue_policy.max_queue_size = 0
    assert to_text(encoder) == (ROOT / "tests" / "golden" / "embed_encoder.pbtxt").read_text()


def test_every_model_and_pipeline_is_ready(server: TritonProcess) -> None:
    """The three models, and each pipeline with its generated steps (<pipeline>_<step>) beside its ensemble."""
    expected = {"bert", "resnet", "sentiment", "embed", "embed_tokenize", "embed_encoder",
                "classify_text", "classify_text_tokenize", "classify_text_encoder", "classify_text_classify",
                "classify_image", "classify_image_image", "classify_image_classify"}
    assert {(m.name, m.version, m.state) for m in server.model_states()} == {(n, "1", "READY") for n in expected}


def test_served_config_is_the_emitted_one(server: TritonProcess) -> None:
    served = server.served_config("bert")
    assert [i["name"] for i in served["input"]] == ["input_ids", "attention_mask", "token_type_ids"]
    assert {i["data_type"] for i in served["input"]} == {"TYPE_INT64"}
    assert [[int(d) for d in o["dims"]] for o in served["output"]] == [[-1, 384], [384]]
    assert server.served_config("resnet")["max_batch_size"] == 15  # the package's own batch bound (models.yaml)


def test_bert_over_http_equals_eager(server: TritonProcess, repository: Path) -> None:
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 30522, (2, 13), dtype=np.int64)
    mask = np.ones((2, 13), dtype=np.int64)
    mask[1, 9:] = 0
    types = np.zeros((2, 13), dtype=np.int64)
    types[:, 7:] = 1
    client = httpclient.InferenceServerClient(server.http_url)
    inputs = []
    for name, value in (("input_ids", ids), ("attention_mask", mask), ("token_type_ids", types)):
        item = httpclient.InferInput(name, list(value.shape), "INT64")
        item.set_data_from_numpy(value)
        inputs.append(item)
    served = client.infer("bert", inputs)
    with torch.no_grad():
        hidden, pooled = _eager("bert")(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                                        token_type_ids=torch.from_numpy(types)).to_tuple()
    atol, rtol = _tolerance(repository, "bert", "last_hidden_state__0")
    np.testing.assert_allclose(served.as_numpy("last_hidden_state__0"), hidden.numpy(), atol=atol, rtol=rtol)
    np.testing.assert_allclose(served.as_numpy("pooler_output__1"), pooled.numpy(), atol=atol, rtol=rtol)


def test_resnet_over_grpc_equals_eager_at_a_new_image_size(server: TritonProcess, repository: Path) -> None:
    x = np.random.default_rng(1).random((3, 3, 176, 200), dtype=np.float32)  # the package takes sizes >= 168
    client = grpcclient.InferenceServerClient(server.grpc_url)
    item = grpcclient.InferInput("INPUT__0", list(x.shape), "FP32")
    item.set_data_from_numpy(x)
    served = client.infer("resnet", [item]).as_numpy("OUTPUT__0")
    with torch.no_grad():
        expected = _eager("resnet")(torch.from_numpy(x)).numpy()
    atol, rtol = _tolerance(repository, "resnet", "OUTPUT__0")
    assert served.shape == (3, 1000)
    np.testing.assert_allclose(served, expected, atol=atol, rtol=rtol)


def test_verify_passes_on_the_committed_manifest(repository: Path) -> None:
    """What `make verify` runs, with the embedded engine: CI runs it on every change."""
    result = run_subprocess("-m", "compiler", "verify", "--manifest", "models.yaml", "--repository", str(repository))
    assert result.code == 0, result.out + result.err
    assert " 0 failed" in result.out
    assert result.out.count("equal to eager PyTorch") >= 2 * 2 * 4


def test_check_finds_our_own_repository_clean(repository: Path) -> None:
    from tests.helpers import run_cli

    result = run_cli("check", str(repository))
    assert result.code == 0, result.out
    assert "target release 26.11 (the build record" in result.out
    assert "0 error(s), 0 warning(s)" in result.out
    assert "resnet: package call spec: ARGS[0] -> RESULT" in result.out  # the package was loaded, held to its config
    assert "bert: input binding (FORWARD_ARGUMENT): input_ids -> input_ids, attention_mask -> attention_mask, " \
        "token_type_ids -> token_type_ids" in result.out


def test_import_builds_the_committed_repository_again_with_identical_configs(repository: Path, tmp_path: Path) -> None:
    """`compiler import` of what `make repo` built: a manifest that builds every config again, byte for byte (the
    resnet package and bert's TorchScript from their own files, their variants, both pipelines)."""
    manifest = tmp_path / "imported.yaml"
    result = run_cli("import", str(repository), "--output", str(manifest))
    assert result.code == 0, result.out + result.err
    assert "3 models and 3 pipelines imported" in result.out and "left out" not in result.out, result.out
    again = run_cli("build", "--manifest", str(manifest), "--output", str(tmp_path / "again"), "--allow-path",
                    str(repository))
    assert again.code == 0, again.out + again.err

    def configs(root: Path) -> dict[Path, str]:
        return {path.relative_to(root): path.read_text() for path in root.rglob("*.pbtxt")}

    assert configs(tmp_path / "again") == configs(repository)
