"""Which Triton release a repository targets, in the order LOOKUP_ORDER says (the one statement of it: `check`'s
help, `serve`'s and the docs quote it). The seed keeps Triton/Dockerfile next to Triton/models, hence the FROM tag.
"""

from __future__ import annotations

import re
from pathlib import Path

from compiler.releases import DEFAULT_RELEASE, Release

#: Where the target release comes from, first found first: what resolve_release does, in words.
LOOKUP_ORDER = ("--triton-version, else the build record (build.json), else the FROM tag of a tritonserver Dockerfile "
                "beside or above the repository, else a models.yaml's triton_version beside or above it, else the "
                "latest known release")

_FROM = re.compile(r"^\s*FROM\s+\S*tritonserver:(\d{2}\.\d{2})", re.I | re.M)


def resolve_release(repository: Path, flag: str | None) -> tuple[str, str]:
    if flag:
        return str(Release.parse(flag)), "--triton-version"
    from compiler.repository.record import built_from

    manifest, recorded = built_from(repository)
    if recorded:
        return recorded, f"the build record ({manifest or 'build.json'})"
    start = Path(repository).resolve()
    for folder in [start, *start.parents]:
        dockerfile = folder / "Dockerfile"
        if dockerfile.is_file():
            match = _FROM.search(dockerfile.read_text(errors="replace"))
            if match:
                return match.group(1), f"FROM in {dockerfile}"
        manifest = folder / "models.yaml"
        if manifest.is_file():
            from compiler.errors import UserError
            from compiler.manifest import load_manifest

            try:
                return load_manifest(manifest).manifest.triton_version, f"triton_version in {manifest}"
            except UserError:
                pass
    return DEFAULT_RELEASE, "latest known release"
