"""publish: to an S3-compatible server on loopback (moto's server mode), and served from there by tritonserver."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from compiler.deploy.publish import INDEX, publish
from compiler.deploy.storage_uri import StorageUri
from compiler.server.ports import free_port
from tests.helpers import Project, run_cli

MANIFEST = """
models:
  - name: first
    source: {python: "tiny_models:affine"}
    max_batch_size: 4
    inputs: [{name: INPUT__0, dtype: FP32, dims: [4]}]
  - name: second
    source: {python: "tiny_models:two_outputs"}
    max_batch_size: 4
    inputs: [{name: x, dtype: FP32, dims: [-1], example: {shape: [6]}}]
"""


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Any]]:
    import boto3
    from moto.server import ThreadedMotoServer

    for key, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                       ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(key, value)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}")
    client.create_bucket(Bucket="models")
    try:
        yield f"127.0.0.1:{port}", client
    finally:
        server.stop()


def _keys(client: Any) -> set[str]:
    return {o["Key"] for o in client.list_objects_v2(Bucket="models").get("Contents", [])}


def test_publish_uploads_the_layout_then_only_what_changed(project: Project, s3: tuple[str, Any]) -> None:
    endpoint, client = s3
    project.built(MANIFEST)
    uri = f"s3://{endpoint}/models/repo"
    result = run_cli("publish", "--repository", str(project.output), "--storage-uri", uri)
    assert result.code == 0, result.err
    local = {p.relative_to(project.output).as_posix() for p in project.output.rglob("*") if p.is_file()}
    assert _keys(client) == {f"repo/{rel}" for rel in local} | {f"repo/{INDEX}"}
    body = client.get_object(Bucket="models", Key="repo/first/1/model.pt")["Body"].read()
    assert body == (project.output / "first" / "1" / "model.pt").read_bytes()

    again = publish(project.output, StorageUri.parse(uri))
    assert again.uploaded == [] and again.deleted == [] and len(again.unchanged) == len(local)

    # change one model: only its changed files travel; drop the other: its objects go
    project.write(MANIFEST.replace("max_batch_size: 4\n    inputs: [{name: INPUT__0", "max_batch_size: 2\n    inputs: [{name: INPUT__0")
                  .split("  - name: second")[0])
    assert project.build().code == 0
    third = publish(project.output, StorageUri.parse(uri))
    assert "first/config.pbtxt" in third.uploaded
    assert all(name.startswith("first/") for name in third.uploaded)
    assert third.deleted and all(name.startswith("second/") for name in third.deleted)
    assert not any(key.startswith("repo/second/") for key in _keys(client))


def test_an_object_removed_behind_our_back_is_uploaded_again(project: Project, s3: tuple[str, Any]) -> None:
    endpoint, client = s3
    project.built(MANIFEST)
    uri = StorageUri.parse(f"s3://{endpoint}/models/repo")
    publish(project.output, uri)
    client.delete_object(Bucket="models", Key="repo/second/1/model.pt")
    report = publish(project.output, uri)
    assert report.uploaded == ["second/1/model.pt"]


def test_publish_errors_name_the_uri_and_the_fix(project: Project, s3: tuple[str, Any]) -> None:
    endpoint, _ = s3
    project.built(MANIFEST)
    result = run_cli("publish", "--repository", str(project.output), "--storage-uri", f"s3://{endpoint}/no-such-bucket/x")
    assert result.code == 1 and "publishing to s3://" in result.err and "bucket exists" in result.err
    empty = run_cli("publish", "--repository", str(project.root / "nothing"), "--storage-uri", f"s3://{endpoint}/models")
    assert empty.code == 1 and "make repo" in empty.err


@pytest.mark.tritonserver
def test_tritonserver_serves_the_published_repository_from_s3(project: Project, s3: tuple[str, Any]) -> None:
    """What the plain Kubernetes deployment does: --model-repository=s3://host:port/bucket/path."""
    import numpy as np
    import tritonclient.http as httpclient

    from compiler.server.process import TritonProcess

    endpoint, _ = s3
    project.built(MANIFEST)
    uri = StorageUri.parse(f"s3://{endpoint}/models/repo")
    publish(project.output, uri)
    with TritonProcess(uri.text) as server:
        server.wait_ready(timeout=300)
        assert {m.name: m.state for m in server.model_states()} == {"first": "READY", "second": "READY"}
        client = httpclient.InferenceServerClient(server.http_url)
        x = np.arange(6, dtype=np.float32).reshape(1, 6)  # two_outputs: (x.sum(-1), x * 2 as FP16)
        request = httpclient.InferInput("x", [1, 6], "FP32")
        request.set_data_from_numpy(x)
        answer = client.infer("second", [request])
        assert answer.as_numpy("OUTPUT__0").tolist() == [[15.0]]  # a scalar per example: dims [1], reshape []
        assert answer.as_numpy("OUTPUT__1").tolist() == [[0.0, 2.0, 4.0, 6.0, 8.0, 10.0]]


def test_storage_uri_forms() -> None:
    aws = StorageUri.parse("s3://bucket/a/b")
    assert (aws.bucket, aws.prefix, aws.endpoint) == ("bucket", "a/b", None)
    local = StorageUri.parse("s3://minio:9000/bucket/a")
    assert (local.bucket, local.prefix, local.endpoint, local.kserve_uri) == ("bucket", "a", "minio:9000", "s3://bucket/a")
    assert Path(StorageUri.parse("s3://bucket").prefix or ".") == Path(".")
