"""What the CLI prints for a build and a verify run: plain lines, so that the CLI only echoes them.

    for line in build_lines(report, seconds, style): click.echo(line)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # types only: a no-op build must not import the verifier (or torch)
    from compiler.build import BuildReport
    from compiler.verify.result import Check

#: Colours a word ("warning: ", "FAIL") for a terminal; the identity for plain text.
Style = Callable[[str, str], str]


def plain(text: str, _kind: str) -> str:
    return text


def build_lines(report: BuildReport, seconds: float, style: Style = plain) -> list[str]:
    width = max([20, *(len(entry.name) + 1 for entry in report.models)])
    lines = []
    for entry in report.models:
        lines.append(f"{entry.name:<{width}} {entry.status}" + (f" in {entry.seconds:.1f}s" if entry.seconds else ""))
        lines.extend(f"    input  {name} -> forward({argument})" for name, argument in entry.binding)
        lines.extend(f"    input  {line}" for line in entry.inputs)
        lines.extend(f"    output {line}" for line in entry.outputs)
        lines.extend(f"    guard  {line}" for line in entry.guards)
        if entry.steps:
            lines.append(f"    steps  {entry.steps}")
        lines.extend(style("    warning: ", "warning") + warning for warning in entry.warnings)
    lines.extend(style("warning: ", "warning") + warning for warning in report.warnings)
    state = "written" if report.wrote else "unchanged, nothing written"
    lines.append(f"repository {report.output}: {state} ({seconds:.1f}s)")
    return lines


def verify_lines(checks: list[Check], style: Style = plain) -> list[str]:
    """One aligned row per check (long model names widen the column), then the count."""
    model_width = max([5, *(len(c.model) for c in checks)])
    check_width = max([5, *(len(c.check) for c in checks)])
    lines = [f"{'model':<{model_width}} {'check':<{check_width}} {'proto':<5} result"]
    for c in checks:
        mark = "ok  " if c.ok else style("FAIL", "error")
        lines.append(f"{c.model:<{model_width}} {c.check:<{check_width}} {c.protocol:<5} {mark} {c.detail}")
    failed = sum(not c.ok for c in checks)
    lines.append(f"{len(checks) - failed} passed, {failed} failed")
    return lines
