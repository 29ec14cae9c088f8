"""A short soak in CI (the full one is `make soak`): zero errors, every answer right, memory reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.verify.soak import soak
from tests.helpers import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.tritonserver]


def test_short_soak_mixed_protocols(example_repository: Path) -> None:
    report = soak(ROOT / "models.yaml", example_repository, "bert", requests=600, concurrency=16)
    print(report.summary())
    assert report.ok, report.errors[:5] + report.hostile_wrong[:5] + report.deaths[:5]
    # nothing lost, 5% hostile; a good request merged with a refused one is refused with it (NVIDIA's backend)
    assert report.hostile > 0 and len(report.latencies_ms) + report.collateral + report.hostile == 600
    assert "lost 0; processes died 0" in report.summary()
    assert set(report.by_protocol) == {"http", "grpc"}
    assert report.loaded == ["bert"]  # the example repository's other models and pipelines are not loaded
    assert report.rss_before_mb > 0 and report.rss_after_mb > 0
