"""What a build says: one ModelReport per model or pipeline, and the BuildReport around them; their JSON carries a
toolchain's build (build/toolchain.py) back to the process that asked for it.

    report = BuildReport.from_json(text)
    report.models[0].status          # built | unchanged | kept
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class ModelReport:
    name: str
    status: str  # built | unchanged | kept (exported by a failed build, same fingerprint)
    seconds: float = 0.0
    binding: list[tuple[str, str]] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    guards: list[str] = field(default_factory=list)  # what the export refuses (export/guards.py)
    inputs: list[str] = field(default_factory=list)  # a pipeline's raw inputs ("TEXT TYPE_STRING [1]")
    steps: str = ""  # a pipeline's steps, in order


@dataclass
class BuildReport:
    output: Path
    models: list[ModelReport]
    wrote: bool
    warnings: list[str] = field(default_factory=list)  # about the whole build, not one model

    def to_json(self) -> str:
        data: dict[str, Any] = dataclasses.asdict(self)
        data["output"] = str(self.output)
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> BuildReport:
        data = json.loads(text)
        models = [ModelReport(**{**m, "binding": [tuple(pair) for pair in m["binding"]]}) for m in data["models"]]
        return cls(Path(data["output"]), models, data["wrote"], data["warnings"])
