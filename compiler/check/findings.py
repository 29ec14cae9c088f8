"""What `check` reports: a finding is a severity plus a Problem (the compiler's one diagnostic type), under the code
of the rule it breaks (compiler/rulebook.py; the rule's fix stands in for a hint the finding does not give).

    Finding.of(ERROR, "no config.pbtxt", model="bert", file=folder, hint="...", code="L001")
    finding.problem.render()
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from compiler.errors import Problem
from compiler.rulebook import RULES

ERROR = "error"
WARNING = "warning"
INFO = "info"


@dataclass(frozen=True)
class Finding:
    severity: str
    problem: Problem

    @classmethod
    def of(cls, severity: str, message: str, model: str | None = None, file: Path | None = None,
           line: int | None = None, column: int | None = None, hint: str | None = None,
           field: str | None = None, code: str | None = None) -> Finding:
        if hint is None and code is not None and RULES[code].fix != "-":
            hint = RULES[code].fix
        return cls(severity, Problem(message, file=file, line=line, column=column, model=model, field=field, hint=hint,
                                     code=code))

    @property
    def code(self) -> str | None:
        return self.problem.code

    @property
    def message(self) -> str:
        return self.problem.message

    @property
    def model(self) -> str | None:
        return self.problem.model

    @property
    def hint(self) -> str | None:
        return self.problem.hint

    def place(self) -> str:
        return self.problem.where() or "-"

    def to_json(self) -> dict[str, object]:
        p = self.problem
        return {"severity": self.severity, "code": p.code, "rule": RULES[p.code].name if p.code else None,
                "message": p.message, "model": p.model, "field": p.field,
                "file": str(p.file) if p.file else None, "line": p.line, "column": p.column, "hint": p.hint}


def render_text(findings: list[Finding], release: str, why: str) -> str:
    lines = [f"target release {release} ({why})"]
    for f in findings:
        model = f"{f.model}: " if f.model else ""
        code = f"{f.code} " if f.code else ""
        lines.append(f"{f.severity:<7} {f.place()}: {code}{model}{f.message}")
        if f.hint:
            lines.append(f"        hint: {f.hint}")
    errors = sum(f.severity == ERROR for f in findings)
    warnings = sum(f.severity == WARNING for f in findings)
    lines.append(f"{errors} error(s), {warnings} warning(s)")
    return "\n".join(lines)


def render_json(findings: list[Finding], release: str, why: str) -> str:
    return json.dumps({
        "release": release,
        "release_source": why,
        "errors": sum(f.severity == ERROR for f in findings),
        "warnings": sum(f.severity == WARNING for f in findings),
        "findings": [f.to_json() for f in findings],
    }, indent=2)


def line_of(text: str, needle: str) -> int | None:
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    return None
