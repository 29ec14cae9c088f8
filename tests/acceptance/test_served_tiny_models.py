"""Repositories built from tiny models, served by the real embedded tritonserver.

These prove the end-to-end contract cheaply: inputs reach the argument they
name whatever the config order, per-example scalars come back through the
reshape, and requests batch and split correctly.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

from compiler.server.process import TritonProcess
from tests.helpers import Project

pytestmark = pytest.mark.tritonserver

MANIFEST = """
models:
  - name: by_name
    source: {python: "tiny_models:bert_like"}
    max_batch_size: 8
    dynamic_batching: {max_queue_delay_microseconds: 2000}
    inputs:
      - {name: token_type_ids, dtype: INT64, dims: [-1], example: {shape: [5], high: 2}}
      - {name: input_ids, dtype: INT64, dims: [-1], example: {shape: [5], high: 100}}
      - {name: attention_mask, dtype: INT64, dims: [-1], example: {shape: [5], high: 2}}
  - name: by_index
    source: {python: "tiny_models:bert_like"}
    max_batch_size: 0
    inputs:
      - {name: INPUT__2, dtype: INT64, dims: [5], example: {high: 2}}
      - {name: INPUT__0, dtype: INT64, dims: [5], example: {high: 100}}
      - {name: INPUT__1, dtype: INT64, dims: [5], example: {high: 2}}
  - name: two_outputs
    source: {python: "tiny_models:two_outputs"}
    max_batch_size: 4
    inputs: [{name: x, dtype: FP32, dims: [-1], example: {shape: [6]}}]
  - name: fragile
    source: {python: "tiny_models:fragile"}
    export: script
    max_batch_size: 8
    dynamic_batching: {max_queue_delay_microseconds: 200000}
    inputs: [{name: x, dtype: FP32, dims: [3]}]
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonProcess]:
    built = Project.at(tmp_path_factory.mktemp("tiny")).built(MANIFEST)
    with TritonProcess(built.output) as process:
        process.wait_ready(timeout=300)
        yield process
    assert not process.running()


def _ids(batch: int | None, length: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    shape = (batch, length) if batch else (length,)
    return {
        "input_ids": rng.integers(0, 100, shape, dtype=np.int64),
        "attention_mask": rng.integers(0, 2, shape, dtype=np.int64),
        "token_type_ids": rng.integers(0, 2, shape, dtype=np.int64),
    }


def _expected(t: dict[str, np.ndarray]) -> np.ndarray:
    return t["input_ids"] + 100 * t["attention_mask"] + 10000 * t["token_type_ids"]


def test_every_model_is_ready(server: TritonProcess) -> None:
    states = {m.name: m.state for m in server.model_states()}
    assert states == {"by_name": "READY", "by_index": "READY", "two_outputs": "READY", "fragile": "READY"}


def test_inputs_reach_the_argument_they_name_over_http(server: TritonProcess) -> None:
    tensors = _ids(3, 9)
    client = httpclient.InferenceServerClient(server.http_url)
    inputs = []
    for name in ("attention_mask", "token_type_ids", "input_ids"):  # yet another order
        item = httpclient.InferInput(name, list(tensors[name].shape), "INT64")
        item.set_data_from_numpy(tensors[name])
        inputs.append(item)
    answer = client.infer("by_name", inputs).as_numpy("OUTPUT__0")
    np.testing.assert_array_equal(answer, _expected(tensors))


def test_named_index_inputs_bind_by_index_over_grpc(server: TritonProcess) -> None:
    tensors = _ids(None, 5)
    names = {"INPUT__0": "input_ids", "INPUT__1": "attention_mask", "INPUT__2": "token_type_ids"}
    client = grpcclient.InferenceServerClient(server.grpc_url)
    inputs = []
    for config_name, arg in names.items():
        item = grpcclient.InferInput(config_name, [5], "INT64")
        item.set_data_from_numpy(tensors[arg])
        inputs.append(item)
    answer = client.infer("by_index", inputs).as_numpy("OUTPUT__0")
    np.testing.assert_array_equal(answer, _expected(tensors))


def test_scalar_outputs_and_variable_dims(server: TritonProcess) -> None:
    x = np.random.default_rng(1).random((3, 7), dtype=np.float32)
    client = httpclient.InferenceServerClient(server.http_url)
    item = httpclient.InferInput("x", [3, 7], "FP32")
    item.set_data_from_numpy(x)
    result = client.infer("two_outputs", [item])
    np.testing.assert_allclose(result.as_numpy("OUTPUT__0").reshape(3), x.sum(-1), rtol=1e-5)
    assert result.as_numpy("OUTPUT__1").dtype == np.float16
    np.testing.assert_allclose(result.as_numpy("OUTPUT__1"), (x * 2).astype(np.float16))


def test_concurrent_requests_are_batched_and_split_back(server: TritonProcess) -> None:
    client = httpclient.InferenceServerClient(server.http_url, concurrency=8)
    pending = []
    for seed in range(8):
        tensors = {k: v + seed for k, v in _ids(1, 6).items()}
        inputs = []
        for name, value in tensors.items():
            item = httpclient.InferInput(name, list(value.shape), "INT64")
            item.set_data_from_numpy(value)
            inputs.append(item)
        pending.append((tensors, client.async_infer("by_name", inputs)))
    for tensors, request in pending:
        np.testing.assert_array_equal(request.get_result().as_numpy("OUTPUT__0"), _expected(tensors))
    stats = client.get_inference_statistics("by_name")["model_stats"][0]
    assert int(stats["execution_count"]) <= int(stats["inference_count"])


def _fragile_request(client: httpclient.InferenceServerClient, value: float) -> object:
    item = httpclient.InferInput("x", [1, 3], "FP32")
    item.set_data_from_numpy(np.full((1, 3), value, dtype=np.float32))
    return client.async_infer("fragile", [item])


def test_an_exception_in_forward_fails_its_execution_and_the_server_serves_on(server: TritonProcess) -> None:
    """NVIDIA's backend answers one exception with one error for every request of the execution (the emulated
    backend ran the others again alone): a request merged with the bad one fails with its error, never with a
    wrong answer, and the next request is answered."""
    from tritonclient.utils import InferenceServerException

    client = httpclient.InferenceServerClient(server.http_url, concurrency=8)
    values = [1.0, 2.0, 5000.0, 3.0, 4.0, 5.0]  # sent together: the batcher merges them into one forward()
    pending = [(v, _fragile_request(client, v)) for v in values]
    for value, handle in pending:
        if value > 1000:
            with pytest.raises(InferenceServerException, match="input too large for this model"):
                handle.get_result()  # type: ignore[attr-defined]
            continue
        try:
            answer = handle.get_result().as_numpy("OUTPUT__0")  # type: ignore[attr-defined]
        except InferenceServerException as err:
            assert "input too large for this model" in str(err)  # merged with the bad one
            continue
        np.testing.assert_array_equal(answer, np.full((1, 3), 2 * value, dtype=np.float32))
    answer = _fragile_request(client, 6.0).get_result().as_numpy("OUTPUT__0")  # type: ignore[attr-defined]
    np.testing.assert_array_equal(answer, np.full((1, 3), 12.0, dtype=np.float32))
    assert client.is_server_live() and client.is_model_ready("fragile")


def test_a_variant_is_served_with_model_config_name_and_others_fall_back(tmp_path_factory: pytest.TempPathFactory) -> None:
    """tritonserver --model-config-name=cpu loads configs/cpu.pbtxt; a model without one loads config.pbtxt."""
    from compiler.verify import verify

    built = Project.at(tmp_path_factory.mktemp("variants")).built("""
        models:
          - name: with_variant
            source: {python: "tiny_models:affine"}
            max_batch_size: 4
            inputs: [{name: INPUT__0, dtype: FP32, dims: [4]}]
            instance_group: [{kind: KIND_GPU}]
            variants:
              cpu: {instance_group: [{kind: KIND_CPU, count: 3}], max_batch_size: 2}
          - name: without
            source: {python: "tiny_models:two_outputs"}
            max_batch_size: 4
            inputs: [{name: x, dtype: FP32, dims: [-1], example: {shape: [6]}}]
    """)
    with TritonProcess(built.output, model_config_name="cpu") as process:
        process.wait_ready(timeout=300)
        served = process.served_config("with_variant")
        assert served["max_batch_size"] == 2
        assert [(g["kind"], g["count"]) for g in served["instance_group"]] == [("KIND_CPU", 3)]
        assert process.served_config("without")["max_batch_size"] == 4
    checks = verify(built.manifest, built.output, variant="cpu")
    assert all(c.ok for c in checks), [c for c in checks if not c.ok]
    config_checks = {c.model: c.detail for c in checks if c.check == "served config"}
    assert config_checks == {"with_variant": "matches configs/cpu.pbtxt", "without": "matches config.pbtxt"}
    ready = [c.detail for c in checks if c.check == "ready" and c.model == "with_variant"]
    assert ready == ["READY"]  # the cpu variant needs no KIND_GPU override on this machine
