"""NVIDIA's PyTorch backend: which branch serves a release, and the pinned archives it is built from (fast: no
build, no server)."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from compiler.backend.nvidia import build as native
from compiler.backend.nvidia.sources import (
    BRANCHES,
    SOURCES_ENV,
    SourceUnavailable,
    archive,
    branch_for,
    commit_of,
    exact,
    served_by,
    unpack,
)

VENDORED = Path(__file__).resolve().parents[3] / "shared" / "vendor" / "triton-backend-sources"


@pytest.mark.parametrize(("release", "ref"), [
    ("26.11", "r26.05"), ("26.06", "r26.05"), ("26.05", "r26.05"), ("26.04", "r26.04"), ("26.03", "r26.03"),
    ("26.02", "r24.10"), ("24.10", "r24.10"), ("22.01", "r24.10"),
])
def test_a_release_is_served_by_its_own_branch_else_the_nearest_older_else_the_oldest(release: str, ref: str) -> None:
    assert branch_for(release).ref == ref


def test_only_the_branches_we_have_are_exact() -> None:
    assert [r for r in ("24.10", "26.02", "26.03", "26.05", "26.11") if exact(r)] == ["24.10", "26.03", "26.05"]
    assert served_by("26.11") == {"branch": "r26.05", "commit": "55bbe27ff7b6be1642dbd0d2737c148d0684c3a7",
                                  "exact": False, "source": "triton-inference-server/pytorch_backend"}


def _tar(path: Path, top: str, commit: str | None) -> Path:
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT,
                      pax_headers={"comment": commit} if commit else {}) as tar:
        data = b"cmake_minimum_required(VERSION 3.18)\n"
        info = tarfile.TarInfo(f"{top}/CMakeLists.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


def test_an_archive_of_another_commit_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = BRANCHES[-1].pytorch_backend
    monkeypatch.setenv(SOURCES_ENV, str(tmp_path))
    _tar(tmp_path / f"{source.name}.tar.gz", source.name, "0" * 40)
    with pytest.raises(SourceUnavailable, match=f"not the pinned {source.commit}"):
        archive(source, tmp_path / "downloads")
    _tar(tmp_path / f"{source.name}.tar.gz", source.name, source.commit)
    assert archive(source, tmp_path / "downloads") == tmp_path / f"{source.name}.tar.gz"


def test_a_missing_archive_names_the_file_and_the_commit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = BRANCHES[0].core
    monkeypatch.setenv(SOURCES_ENV, str(tmp_path))
    with pytest.raises(SourceUnavailable) as err:
        archive(source, tmp_path / "downloads")
    problem = err.value.problems[0]
    assert f"{source.name}.tar.gz" in problem.message and source.commit[:12] in problem.message
    assert problem.hint and "git archive" in problem.hint


def test_unpack_takes_the_one_top_folder(tmp_path: Path) -> None:
    tree = unpack(_tar(tmp_path / "a.tar.gz", "core-r26.05", "1" * 40), tmp_path / "src" / "core")
    assert (tree / "CMakeLists.txt").is_file() and commit_of(tmp_path / "a.tar.gz") == "1" * 40


@pytest.mark.skipif(not VENDORED.is_dir(), reason="the pinned archives are not beside this clone")
def test_every_pinned_source_is_vendored_at_its_commit() -> None:
    for branch in BRANCHES:
        for source in branch.sources:
            assert commit_of(VENDORED / f"{source.name}.tar.gz") == source.commit, source.name


def _stamped(folder: Path, stamp: dict[str, str]) -> Path:
    for name in native.BACKEND_NAMES:
        (folder / name).mkdir(parents=True)
        (folder / name / native.library_name(name)).write_bytes(b"")
    (folder / native.STAMP).write_text(json.dumps(stamp))
    return folder


def test_a_library_built_for_another_torch_is_stale(tmp_path: Path) -> None:
    branch = BRANCHES[-1]
    server = tmp_path / "libtritonserver-717102f0.so"
    stamp = native.expected_stamp(branch, server)
    assert native.check_fresh(_stamped(tmp_path / "fresh", stamp), branch, server).stamp == stamp
    other = {**stamp, "torch": "2.11.0", "torch_git": "0" * 40}
    with pytest.raises(native.BackendStale, match="torch '2.11.0'"):
        native.check_fresh(_stamped(tmp_path / "old", other), branch, server)
    assert native.cache_folder(other) != native.cache_folder(stamp)  # so ensure() never finds the old one


def test_the_cache_folder_depends_on_every_input(tmp_path: Path) -> None:
    stamp = native.expected_stamp(BRANCHES[-1], tmp_path / "libtritonserver-717102f0.so")
    folders = {native.cache_folder({**stamp, key: value + "x"}) for key, value in stamp.items()}
    assert len(folders) == len(stamp) and native.cache_folder(stamp) not in folders


def test_the_sources_folder_is_set_for_the_tests() -> None:
    """tests/conftest.py points the build at the pinned archives beside the clone (CI has no GitHub)."""
    if VENDORED.is_dir():
        assert Path(os.environ[SOURCES_ENV]).resolve() == VENDORED.resolve()  # make gives it as ../shared/…
