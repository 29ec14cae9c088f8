"""The perf_analyzer commands the build writes (Triton/profiling/<model>/perf_analyzer.txt) run, with Triton's
own perf_analyzer 2.51, against the served example models over gRPC and HTTP."""

from __future__ import annotations

import os
import shlex
import time
from pathlib import Path

import pytest

from compiler.manifest import load_manifest
from compiler.profiling.perf_analyzer import LOOSE_STABILITY, locate
from compiler.server.process import TritonProcess
from tests.helpers import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.tritonserver]

MODELS = [m.name for m in load_manifest(ROOT / "models.yaml").manifest.models]
#: This test asks whether the command runs, not how fast: windows of a few requests each (ResNet-50 takes a tenth
#: of a second a request here) and a stability bound loose enough that a busy machine still gets a report.
SHORT = ("--measurement-mode", "count_windows", "--measurement-request-count", "8", "--max-trials", "10",
         "--stability-percentage", LOOSE_STABILITY["stability-percentage"])


@pytest.mark.parametrize("name", MODELS)
def test_the_generated_command_measures_the_served_model(example_repository: Path, example_server: TritonProcess,
                                                         name: str) -> None:
    lines = (example_repository.parent / "profiling" / name / "perf_analyzer.txt").read_text().splitlines()
    analyzer = locate()
    for url, protocol in ((example_server.grpc_url, "grpc"), (example_server.http_url, "http")):
        result = analyzer.measure(shlex.split(lines[0]), url, protocol, interval_ms=500, extra=SHORT)
        assert result.concurrency == 1 and result.protocol == protocol
        assert result.throughput > 0 and 0 < result.p50_us <= result.p90_us <= result.p99_us


def test_locating_perf_analyzer_again_leaves_its_libraries_in_place() -> None:
    """Every bench cell and test worker locates perf_analyzer; one that unlinked a library link to make it again left a
    moment in which another worker's perf_analyzer could not load libcudart.so.12 (seen in a fresh-clone run). A link
    that is right is left as it is, the same file."""
    def links() -> dict[str, tuple[int, int]]:  # a link made again is a new file: another ctime (an inode is reused)
        folder = first.binary.parent / "lib"
        return {path.name: (os.lstat(path).st_ino, os.lstat(path).st_ctime_ns) for path in folder.iterdir()}

    first = locate()
    before = links()
    time.sleep(0.01)  # a link made again now would have a ctime after `before`'s
    assert locate() == first and before and links() == before
