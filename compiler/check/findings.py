"""What `check` reports: findings with a severity, a place, a model and a fix."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

ERROR = "error"
WARNING = "warning"
INFO = "info"


@dataclass(frozen=True)
class Finding:
    severity: str
    message: str
    model: str | None = None
    file: Path | None = None
    line: int | None = None
    column: int | None = None
    hint: str | None = None

    def place(self) -> str:
        if self.file is None:
            return "-"
        text = str(self.file)
        if self.line:
            text += f":{self.line}"
            if self.column:
                text += f":{self.column}"
        return text

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["file"] = str(self.file) if self.file else None
        return data


def render_text(findings: list[Finding], release: str, why: str) -> str:
    lines = [f"target release {release} ({why})"]
    for f in findings:
        model = f"{f.model}: " if f.model else ""
        lines.append(f"{f.severity:<7} {f.place()}: {model}{f.message}")
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
