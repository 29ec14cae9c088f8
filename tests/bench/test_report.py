"""The report make bench writes: measured sections are made anew each run, the decisions written by hand below its
marker stay."""

from __future__ import annotations

from pathlib import Path

from compiler.bench.report import BY_HAND, write_report
from compiler.bench.runner import BenchResults


def test_the_hand_written_decisions_survive_a_new_report(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "benchmarks.md").write_text(f"# Benchmarks\n\nold numbers 1.23\n\n{BY_HAND}\n\n## Decisions\n\nkept: x\n")
    markdown, _ = write_report(BenchResults(models=[], build=None, seconds_per_cell=1.0), docs)
    text = markdown.read_text()
    assert "old numbers 1.23" not in text and "Made by `make bench`" in text
    assert text.endswith(f"{BY_HAND}\n\n## Decisions\n\nkept: x\n")
    assert text.count(BY_HAND) == 1


def test_a_report_without_the_marker_is_replaced_whole(tmp_path: Path) -> None:
    (tmp_path / "benchmarks.md").write_text("# Benchmarks\n\n## Decisions\n\nnot marked\n")
    markdown, _ = write_report(BenchResults(models=[], build=None, seconds_per_cell=1.0), tmp_path)
    assert "not marked" not in markdown.read_text()


def test_a_build_that_fails_in_the_bench_is_said_and_the_rest_is_kept(tmp_path: Path) -> None:
    results = BenchResults(models=[], build=None, seconds_per_cell=1.0, build_error="`-m compiler build` exited 3: x")
    text = write_report(results, tmp_path)[0].read_text()
    assert "## Build\n\nNot measured: `-m compiler build` exited 3: x" in text
