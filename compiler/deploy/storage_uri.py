"""Where a repository lives in object storage, in the s3:// form tritonserver reads."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse

from compiler.errors import Problem, UserError


@dataclass(frozen=True)
class StorageUri:
    """s3://bucket/prefix (AWS), or s3://host:port/bucket/prefix for an S3-compatible server, as Triton reads it."""

    text: str
    bucket: str
    prefix: str
    endpoint: str | None = None  # host:port of an S3-compatible server

    @classmethod
    def parse(cls, text: str) -> StorageUri:
        parsed = urlparse(text)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise UserError(Problem(f"'{text}' is not an s3:// URI", field="--storage-uri",
                                    hint="s3://bucket/path, or s3://host:port/bucket/path for MinIO and the like"))
        parts = [p for p in parsed.path.split("/") if p]
        if ":" in parsed.netloc:  # Triton's form for a non-AWS endpoint: the bucket is the first path part
            if not parts:
                raise UserError(Problem(f"'{text}' names an endpoint but no bucket", field="--storage-uri",
                                        hint="s3://host:port/bucket/path"))
            return cls(text, parts[0], "/".join(parts[1:]), parsed.netloc)
        return cls(text, parsed.netloc, "/".join(parts))

    @property
    def kserve_uri(self) -> str:
        """KServe's storage initializer takes s3://bucket/prefix; the endpoint goes in its S3 secret."""
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")
