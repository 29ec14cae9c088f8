"""sequence_batching end to end in the real tritonserver: the control inputs leave the config's inputs for the
sequence batcher, which fills them (start, end, ready, the sequence id); verify sends interleaved sequences; `check`
counts the controls as forward() arguments, as pytorch_backend does."""

from __future__ import annotations

import json

import numpy as np
import pytest

from compiler.server.session import embedded_server
from compiler.triton_config import parse_text
from tests.helpers import Project, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.tritonserver]

MANIFEST = """
triton_version: "26.11"
models:
  - name: seq
    source: {python: "tiny_models:sequenced"}
    export: trace
    max_batch_size: 2
    inputs:
      - {name: INPUT__0, dtype: FP32, dims: [4]}
      - {name: START__1, dtype: INT32, dims: [1]}
      - {name: END__2, dtype: INT32, dims: [1]}
      - {name: READY__3, dtype: INT32, dims: [1]}
      - {name: CORRID__4, dtype: INT64, dims: [1]}
    sequence_batching: {controls: {start: START__1, end: END__2, ready: READY__3, corrid: CORRID__4}}
    instance_group: [{kind: KIND_CPU}]
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return Project.at(tmp_path_factory.mktemp("sequences")).built(MANIFEST)


def test_the_controls_are_the_sequence_batchers_not_the_clients(project: Project) -> None:
    config = parse_text((project.output / "seq" / "config.pbtxt").read_text())
    assert [i.name for i in config.input] == ["INPUT__0"] and not config.HasField("dynamic_batching")
    controls = {c.name: c.control[0] for c in config.sequence_batching.control_input}
    assert list(controls) == ["START__1", "END__2", "READY__3", "CORRID__4"]
    assert list(controls["START__1"].int32_false_true) == [0, 1]
    assert config.sequence_batching.HasField("direct")
    checked = json.loads(run_cli("check", str(project.output), "--format", "json").out)
    assert checked["errors"] == 0 and checked["warnings"] == 0, checked
    statically = json.loads(run_cli("check", str(project.output), "--no-run", "--format", "json").out)
    assert statically["errors"] == 0, statically


def test_the_server_fills_the_controls_of_each_request(project: Project) -> None:
    """Two sequences, interleaved: each answer is x * 2 + 100 (first) + 10 (last) + 1 (ready) + 1000 x its id."""
    import tritonclient.grpc as grpc

    x = np.arange(4, dtype=np.float32).reshape(1, 4)
    with embedded_server(project.output) as (server, _):
        client = grpc.InferenceServerClient(server.grpc_url)
        answers = {}
        for step in range(3):
            for sid in (7, 8):
                item = grpc.InferInput("INPUT__0", [1, 4], "FP32")
                item.set_data_from_numpy(x)
                result = client.infer("seq", [item], sequence_id=sid, sequence_start=step == 0,
                                      sequence_end=step == 2)
                answers[(sid, step)] = result.as_numpy("OUTPUT__0")
    for (sid, step), answer in answers.items():
        flags = (100 if step == 0 else 0) + (10 if step == 2 else 0) + 1
        np.testing.assert_allclose(answer, x * 2 + flags + 1000 * sid)


def test_verify_sends_interleaved_sequences(project: Project) -> None:
    result = run_cli("verify", "--manifest", str(project.manifest), "--repository", str(project.output))
    assert result.code == 0, result.out + result.err
    rows = [line for line in result.out.splitlines() if "3 sequences x 3 requests, interleaved" in line]
    assert len(rows) == 2 and all(" ok " in row for row in rows), result.out


def test_import_builds_the_sequence_model_again(project: Project) -> None:
    manifest = project.root / "imported.yaml"
    result = run_cli("import", str(project.output), "--output", str(manifest), "--force")
    assert result.code == 0, result.out + result.err
    again = run_cli("build", "--manifest", str(manifest), "--output", str(project.root / "again"))
    assert again.code == 0, again.out + again.err
    assert (project.root / "again" / "seq" / "config.pbtxt").read_text() == \
        (project.output / "seq" / "config.pbtxt").read_text()
