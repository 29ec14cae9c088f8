"""Upload a built repository to S3-compatible storage, content-addressed.

The bucket keeps the repository's own layout under the prefix (tritonserver
and KServe read it as it is), plus an index object, `.publish-index.json`,
mapping each file to its sha256 and size. A file whose hash the index already
holds, and whose object is still there at that size, is not uploaded again.
Files the repository no longer has are deleted (the server would otherwise
still load them, e.g. a removed version folder). The index is written last,
so an interrupted publish is finished by the next one.

    report = publish(Path("Triton/models"), StorageUri.parse("s3://bucket/models"))
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compiler.deploy.storage_uri import StorageUri
from compiler.errors import Problem, UserError
from compiler.repository import layout
from compiler.repository.fingerprint import file_sha256

INDEX = ".publish-index.json"


@dataclass
class PublishReport:
    uploaded: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    bytes_uploaded: int = 0


def local_files(repository: Path) -> dict[str, Path]:
    """Relative path -> file, for every file of every model folder (hidden files and folders left out)."""
    files = {}
    for model in sorted(p for p in Path(repository).iterdir() if p.is_dir() and not p.name.startswith(".")):
        for path in sorted(model.rglob("*")):
            relative = path.relative_to(repository)
            if path.is_file() and not any(part.startswith(".") for part in relative.parts):
                files[relative.as_posix()] = path
    return files


def s3_client(uri: StorageUri, endpoint_url: str | None = None) -> Any:
    import boto3

    endpoint = endpoint_url or (f"http://{uri.endpoint}" if uri.endpoint else None)
    return boto3.client("s3", endpoint_url=endpoint)


def publish(repository: Path, uri: StorageUri, endpoint_url: str | None = None, delete: bool = True,
            progress: Callable[[str], None] = lambda _: None, client: Any = None) -> PublishReport:
    from botocore.exceptions import BotoCoreError, ClientError

    repository = Path(repository)
    if not repository.is_dir() or not any(repository.iterdir()):
        raise UserError(Problem(f"no built repository at {repository}", hint="run `make repo` first"))
    files = local_files(repository)
    client = client or s3_client(uri, endpoint_url)
    prefix = f"{uri.prefix}/" if uri.prefix else ""
    report = PublishReport()
    try:
        remote = _remote_sizes(client, uri.bucket, prefix)
        index = _read_index(client, uri.bucket, prefix + INDEX)
        fresh: dict[str, dict[str, Any]] = {}
        # config.pbtxt last within each model: a server polling the bucket sees the new weights first
        ordered = sorted(files, key=lambda rel: (rel.split("/", 1)[0], rel.endswith(layout.CONFIG_FILE), rel))
        for relative in ordered:
            path = files[relative]
            digest, size = file_sha256(path), path.stat().st_size
            fresh[relative] = {"sha256": digest, "size": size}
            known = index.get(relative, {})
            if known.get("sha256") == digest and remote.get(prefix + relative) == size:
                report.unchanged.append(relative)
                continue
            progress(f"upload {relative} ({size / 2**20:.1f} MiB)")
            client.upload_file(str(path), uri.bucket, prefix + relative, ExtraArgs={"Metadata": {"sha256": digest}})
            report.uploaded.append(relative)
            report.bytes_uploaded += size
        if delete:
            for key in sorted(remote):
                relative = key[len(prefix):]
                if relative != INDEX and relative not in fresh:
                    progress(f"delete {relative}")
                    client.delete_object(Bucket=uri.bucket, Key=key)
                    report.deleted.append(relative)
        body = json.dumps({"files": fresh}, indent=1, sort_keys=True).encode()
        client.put_object(Bucket=uri.bucket, Key=prefix + INDEX, Body=body, ContentType="application/json")
    except (BotoCoreError, ClientError) as err:
        raise UserError(Problem(f"publishing to {uri.text} failed: {err}", field="--storage-uri",
                                hint="check the bucket exists, the credentials (AWS_ACCESS_KEY_ID/"
                                     "AWS_SECRET_ACCESS_KEY or a profile) and --endpoint-url")) from None
    return report


def _remote_sizes(client: Any, bucket: str, prefix: str) -> dict[str, int]:
    sizes = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            sizes[item["Key"]] = int(item["Size"])
    return sizes


def _read_index(client: Any, bucket: str, key: str) -> dict[str, dict[str, Any]]:
    from botocore.exceptions import ClientError

    try:
        data = json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    except ClientError:
        return {}
    except ValueError:  # a damaged index: upload everything again
        return {}
    files = data.get("files") if isinstance(data, dict) else None
    return files if isinstance(files, dict) else {}
