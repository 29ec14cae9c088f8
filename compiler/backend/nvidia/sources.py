"""The pinned sources of NVIDIA's C++ PyTorch backend (``libtriton_pytorch.so``), and which branch serves a release.

One place knows them: each pytorch_backend release branch we build, the helper repositories it builds with
(triton-inference-server/backend, core, common; Tencent/rapidjson), their commits, and the upstream archive of
each. The archives come from ``$TRITON_BACKEND_SOURCES`` when it is set (a folder of ``git archive`` snapshots named
``<repo>-<ref>.tar.gz``, as ``../shared/vendor/triton-backend-sources`` holds), else from GitHub at the same commit.
Either way an archive is accepted only when the commit ``git archive`` wrote into it is the pinned one.

    branch = branch_for(Release.parse("26.11"))    # the r26.05 Branch: the newest we have for a later release
    branch.label                                   # "pytorch_backend r26.05 (55bbe27)"
"""

from __future__ import annotations

import os
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from compiler.errors import Problem, UserError
from compiler.releases import Release

#: Where the archives come from when TRITON_BACKEND_SOURCES is not set (GitHub's archive of a commit).
UPSTREAM = "https://github.com/{owner}/{repo}/archive/{commit}.tar.gz"
SOURCES_ENV = "TRITON_BACKEND_SOURCES"


@dataclass(frozen=True)
class Source:
    """One repository at one commit: `name` is the archive's (`<repo>-<ref>`)."""

    owner: str
    repo: str
    ref: str
    commit: str

    @property
    def name(self) -> str:
        return f"{self.repo}-{self.ref}"

    @property
    def url(self) -> str:
        return UPSTREAM.format(owner=self.owner, repo=self.repo, commit=self.commit)


def _triton(repo: str, ref: str, commit: str) -> Source:
    return Source("triton-inference-server", repo, ref, commit)


RAPIDJSON = Source("Tencent", "rapidjson", "24b5e7a", "24b5e7a8b27f42fa16b96fc70aade9106cf7102f")


@dataclass(frozen=True)
class Branch:
    """A pytorch_backend release branch and the helpers it builds with. `since` is the first Triton release it
    serves here: a target is served by the newest branch not newer than it (and targets before the oldest by the
    oldest)."""

    since: str
    pytorch_backend: Source
    backend: Source
    core: Source
    common: Source
    #: the CMake version its CMakeLists.txt asks for at least
    cmake_minimum: str

    @property
    def ref(self) -> str:
        return self.pytorch_backend.ref

    @property
    def sources(self) -> tuple[Source, ...]:
        return (self.pytorch_backend, self.backend, self.core, self.common, RAPIDJSON)

    @property
    def label(self) -> str:
        return f"pytorch_backend {self.ref} ({self.pytorch_backend.commit[:7]})"


#: Oldest first. There is no backend r26.03-r26.05 branch in the pinned set: r26.02's helpers build the r26.xx
#: backends (TRITONBACKEND API 1.19, as core r24.10 and r26.05 declare it).
BRANCHES = (
    Branch("22.01",
           _triton("pytorch_backend", "r24.10", "e97a90061f7399b25368e2cb1f6d5c40f8cbae4e"),
           _triton("backend", "r24.10", "ac03a5d97403dec841ad46d0439e93db12c9268f"),
           _triton("core", "r24.10", "bfec7c61dc0939433f64f14e89b1973073eac8ba"),
           _triton("common", "r24.10", "578491fc3944f77d16a6a38e3d7691c485c47ba0"), "3.18"),
    Branch("26.03",
           _triton("pytorch_backend", "r26.03", "688df563bc4bfc93e60d665abd94743b46544ad0"),
           _triton("backend", "r26.02", "3f57fb90bee16b86232ee79c45eb4ce69c9ad489"),
           _triton("core", "r26.03", "aa81fad455f60b625046966c6d6a644918eeebb3"),
           _triton("common", "r26.03", "481655317164d674c49acb280bac631b8538d11b"), "3.31.8"),
    Branch("26.04",
           _triton("pytorch_backend", "r26.04", "8ffd6b20804956bd1fe990d3426e3cd1cc46721a"),
           _triton("backend", "r26.02", "3f57fb90bee16b86232ee79c45eb4ce69c9ad489"),
           _triton("core", "r26.04", "ee0bc478f2889e41d02618f9f49e77ee0c278975"),
           _triton("common", "r26.04", "b0b538731dfbd910af5b90027f811677526072d8"), "3.31.8"),
    Branch("26.05",
           _triton("pytorch_backend", "r26.05", "55bbe27ff7b6be1642dbd0d2737c148d0684c3a7"),
           _triton("backend", "r26.02", "3f57fb90bee16b86232ee79c45eb4ce69c9ad489"),
           _triton("core", "r26.05", "e6fcb0c78e072672beab614384fd4f763c302134"),
           _triton("common", "r26.05", "ecb874c3126f9f07810f4900d4e7b088fee5eb8c"), "3.31.8"),
)
NEWEST_BRANCH = BRANCHES[-1]
BY_REF = {branch.ref: branch for branch in BRANCHES}


def branch_for(release: Release | str) -> Branch:
    """The branch that serves `release` here: its own where we have it (r26.03, r26.04, r26.05), the newest we
    have for a later release, r24.10 (the embedded server's own) for every earlier one."""
    target = Release.parse(str(release))
    chosen = BRANCHES[0]
    for branch in BRANCHES:
        if target >= Release.parse(branch.since):
            chosen = branch
    return chosen


def exact(release: Release | str) -> bool:
    """Whether `release` is served by its own branch (not the nearest older one)."""
    return branch_for(release).ref == f"r{Release.parse(str(release))}"


def served_by(release: Release | str) -> dict[str, str | bool]:
    """What a build record says of the backend that serves `release` (here, and in the tests)."""
    branch = branch_for(release)
    return {"branch": branch.ref, "commit": branch.pytorch_backend.commit, "exact": exact(release),
            "source": f"{branch.pytorch_backend.owner}/{branch.pytorch_backend.repo}"}


class SourceUnavailable(UserError):
    """An archive could not be found, fetched, or is not the pinned commit."""


def archive(source: Source, downloads: Path) -> Path:
    """The archive of `source`: from $TRITON_BACKEND_SOURCES when set, else downloaded into `downloads` (once);
    checked against the pinned commit either way."""
    folder = os.environ.get(SOURCES_ENV)
    if folder:
        path = Path(folder) / f"{source.name}.tar.gz"
        if not path.is_file():
            raise SourceUnavailable(Problem(
                f"{SOURCES_ENV}={folder} has no {path.name} ({source.owner}/{source.repo} at {source.commit[:12]})",
                hint=f"put `git archive --prefix={source.name}/ {source.commit}` there as {path.name}, or unset "
                     f"{SOURCES_ENV} to fetch it from GitHub"))
    else:
        path = downloads / f"{source.name}-{source.commit[:12]}.tar.gz"
        if not path.is_file():
            downloads.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(f".part{os.getpid()}")
            try:
                urllib.request.urlretrieve(source.url, partial)  # noqa: S310 - a fixed https URL
            except OSError as err:
                partial.unlink(missing_ok=True)
                raise SourceUnavailable(Problem(
                    f"could not fetch {source.url}: {err}",
                    hint=f"without access to GitHub, set {SOURCES_ENV} to a folder of the pinned archives "
                         "(docs/serving.md, 'NVIDIA's PyTorch backend')")) from None
            partial.rename(path)
    found = commit_of(path)
    if found != source.commit:
        raise SourceUnavailable(Problem(
            f"{path} holds {source.owner}/{source.repo} at {found or 'an unknown commit'}, not the pinned "
            f"{source.commit}", hint="replace it with the archive of the pinned commit"))
    return path


def commit_of(path: Path) -> str | None:
    """The commit `git archive` (and GitHub's archives) record in the tar's global header."""
    try:
        with tarfile.open(path) as tar:
            return (tar.pax_headers or {}).get("comment")
    except (OSError, tarfile.TarError):
        return None


def unpack(path: Path, into: Path) -> Path:
    """Unpack an archive's one top folder as `into`."""
    with tarfile.open(path) as tar:
        members = tar.getmembers()
        tops = {m.name.split("/", 1)[0] for m in members if m.name and m.name != "pax_global_header"}
        if len(tops) != 1:
            raise SourceUnavailable(Problem(f"{path} does not hold one top folder ({', '.join(sorted(tops))})"))
        top = tops.pop()
        into.parent.mkdir(parents=True, exist_ok=True)
        staging = into.parent / f".{into.name}.unpack"
        tar.extractall(staging, members=[m for m in members if m.name.split("/", 1)[0] == top], filter="data")
    (staging / top).rename(into)
    staging.rmdir()
    return into
