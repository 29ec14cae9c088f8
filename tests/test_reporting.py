"""The tables the CLI prints."""

from __future__ import annotations

from compiler.reporting import verify_lines
from compiler.verify.result import Check


def test_the_verify_table_stays_aligned_for_long_model_names() -> None:
    checks = [Check("a_model_with_a_rather_long_name", "ready", "-", True, "READY"),
              Check("m", "served config", "-", False, "differs")]
    lines = verify_lines(checks)
    header, first, second = lines[:3]
    column = header.index("check")
    assert first[column:].startswith("ready") and second[column:].startswith("served config")
    assert header.index("result") == first.index("ok") == second.index("FAIL")
    assert lines[-1] == "1 passed, 1 failed"
