"""Typed config keys end to end in the real tritonserver: reshape (clients send one shape, the model sees another),
keep_versions (the earlier version served beside the new one, each by its number), response_cache; and `compiler
import` of the repository they built, which builds it again with identical configs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from compiler.server.session import embedded_server
from compiler.triton_config import parse_text
from tests.helpers import Project, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.tritonserver]

MANIFEST = """
triton_version: "26.11"
models:
  - name: affine
    source: {{python: "tiny_models:affine", weights: {weights}}}
    export: trace
    version: {version}
    keep_versions: 1
    max_batch_size: 4
    inputs: [{{name: x, dtype: FP32, dims: [2, 2], reshape: [4]}}]
    outputs: [{{name: OUTPUT__0, dtype: FP32, dims: [3, 1], reshape: [3]}}]
    instance_group: [{{kind: KIND_CPU}}]
    dynamic_batching: {{max_queue_delay_microseconds: 100}}
    response_cache: true
    warmup: true
"""


def _weights(path: Path, seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    state = {"linear.weight": torch.randn(3, 4, generator=generator), "linear.bias": torch.randn(3, generator=generator)}
    torch.save(state, path)
    return state


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, dict[int, dict[str, torch.Tensor]]]:
    project = Project.at(tmp_path_factory.mktemp("versions"))
    states = {1: _weights(project.root / "a.pt", 1), 2: _weights(project.root / "b.pt", 2)}
    project.built(MANIFEST.format(weights="a.pt", version=1))
    project.built(MANIFEST.format(weights="b.pt", version=2))
    return project, states


def test_the_earlier_version_is_kept_and_named_in_the_version_policy(
        versions: tuple[Project, dict[int, dict[str, torch.Tensor]]]) -> None:
    project, _ = versions
    folder = project.output / "affine"
    config = parse_text((folder / "config.pbtxt").read_text())
    assert list(config.version_policy.specific.versions) == [1, 2]
    assert (folder / "1" / "model.pt").is_file() and (folder / "2" / "model.pt").is_file()
    assert [list(config.input[0].dims), list(config.input[0].reshape.shape)] == [[2, 2], [4]]
    assert [list(config.output[0].dims), list(config.output[0].reshape.shape)] == [[3, 1], [3]]
    assert config.response_cache.enable


def test_each_version_answers_with_its_own_weights_at_the_clients_shape(
        versions: tuple[Project, dict[int, dict[str, torch.Tensor]]]) -> None:
    """Clients send [n, 2, 2] and get [n, 3, 1]; the model saw [n, 4]: Triton reshaped both ways. Version 1 and 2
    answer each as x @ W.T + b with their own weights, computed here from the weight files."""
    import tritonclient.http as http

    project, states = versions
    x = np.arange(16, dtype=np.float32).reshape(4, 2, 2) / 10
    with embedded_server(project.output) as (server, _):  # no cache in the embedded 2.51: loaded, served uncached
        client = http.InferenceServerClient(server.http_url)
        for version, state in states.items():
            item = http.InferInput("x", [4, 2, 2], "FP32")
            item.set_data_from_numpy(x)
            answer = client.infer("affine", [item], model_version=str(version)).as_numpy("OUTPUT__0")
            want = (torch.from_numpy(x).reshape(4, 4) @ state["linear.weight"].T + state["linear.bias"]).numpy()
            assert answer.shape == (4, 3, 1)
            np.testing.assert_allclose(answer.reshape(4, 3), want, rtol=1e-5, atol=1e-5)
    verified = run_cli("verify", "--manifest", str(project.manifest), "--repository", str(project.output))
    assert verified.code == 0, verified.out + verified.err
    assert "kept version 1" in verified.out


def test_import_writes_a_manifest_that_builds_the_same_configs(
        versions: tuple[Project, dict[int, dict[str, torch.Tensor]]]) -> None:
    project, _ = versions
    before = {p.relative_to(project.output): p.read_text() for p in project.output.rglob("config.pbtxt")}
    imported = project.root / "imported.yaml"
    result = run_cli("import", str(project.output), "--output", str(imported))
    assert result.code == 0, result.out + result.err
    text = imported.read_text()
    assert "torchscript: Triton/models/affine/2/model.pt" in text or "affine/2/model.pt" in text, text
    assert "keep_versions: 1" in text and "reshape: [4]" in text, text
    again = run_cli("build", "--manifest", str(imported), "--output", str(project.output))
    assert again.code == 0, again.out + again.err
    after = {p.relative_to(project.output): p.read_text() for p in project.output.rglob("config.pbtxt")}
    assert after == before
    refused = run_cli("import", str(project.output), "--output", str(imported))
    assert refused.code == 1 and "exists" in refused.err
