"""The perf_analyzer commands the build writes (Triton/profiling/<model>/perf_analyzer.txt) run, with Triton's
own perf_analyzer 2.51, against the served example models over gRPC and HTTP."""

from __future__ import annotations

import shlex
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
