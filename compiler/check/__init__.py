"""`check`: lint any Triton model repository against its models and its target release.

    findings, release, why = check_repository(Path("Triton/models"))
    errors = [f for f in findings if f.severity == "error"]
"""

from __future__ import annotations

from pathlib import Path

from compiler.check.findings import ERROR, Finding
from compiler.check.release import resolve_release
from compiler.check.rules import check_config, check_layout, check_model, parse_config
from compiler.releases import Release

__all__ = ["Finding", "check_repository"]


def check_repository(repository: Path, release_flag: str | None = None,
                     run_models: bool = True) -> tuple[list[Finding], str, str]:
    release_text, why = resolve_release(repository, release_flag)
    release = Release.parse(release_text)
    findings: list[Finding] = []
    folders = sorted(p for p in Path(repository).iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        findings.append(Finding(ERROR, "the repository holds no model folder", file=Path(repository)))
    for folder in folders:
        config_path = folder / "config.pbtxt"
        config = None
        if config_path.is_file():
            config, problems = parse_config(config_path)
            findings.extend(problems)
        findings.extend(check_layout(folder, config))
        if config is not None:
            findings.extend(check_config(config_path, config, release))
            if run_models:
                findings.extend(check_model(folder, config, release))
    return findings, release_text, why
