"""`check`: lint any Triton model repository against its models and its target release.

    findings, release, why = check_repository(Path("Triton/models"))
    errors = [f for f in findings if f.severity == "error"]
"""

from __future__ import annotations

from pathlib import Path

from tritonclient.grpc import model_config_pb2 as pb

from compiler.check.core_rules import runtime_findings
from compiler.check.findings import ERROR, INFO, WARNING, Finding
from compiler.check.release import resolve_release
from compiler.check.rules import (
    autocomplete,
    check_config,
    check_ensembles,
    check_files,
    check_layout,
    check_model,
    parse_config,
    static_binding,
)
from compiler.releases import Release
from compiler.repository import layout

__all__ = ["Finding", "check_repository"]


def check_repository(repository: Path, release_flag: str | None = None,
                     run_models: bool = True) -> tuple[list[Finding], str, str]:
    release_text, why = resolve_release(repository, release_flag)
    release = Release.parse(release_text)
    findings: list[Finding] = []
    configs: dict[str, tuple[Path, pb.ModelConfig]] = {}
    folders = layout.model_folders(repository)
    if not folders:
        findings.append(Finding.of(ERROR, "the repository holds no model folder", file=Path(repository), code="L013"))
    for folder in folders:
        config_path = layout.config_file(folder)
        config = None
        if config_path.is_file():
            config, problems = parse_config(config_path)
            findings.extend(problems)
            if config is not None:
                findings.extend(autocomplete(folder, config, config_path))
                configs[folder.name] = (config_path, config)
        findings.extend(check_layout(folder, config))
        if config is not None:
            findings.extend(check_config(config_path, config, release))
            findings.extend(check_files(folder, config))
            findings.extend(runtime_findings(folder, config, config_path))
            if run_models:
                findings.extend(check_model(folder, config, release))
            else:
                findings.extend(static_binding(folder, config, config_path))
        for variant_path in layout.variant_files(folder):
            variant, problems = parse_config(variant_path)
            findings.extend(problems)
            if variant is not None:
                findings.extend(check_config(variant_path, variant, release))
                if run_models:  # the model against the variant's tensors, batching and instance groups
                    findings.extend(f for f in check_model(folder, variant, release, variant_path)
                                    if f.severity != INFO)
    findings.extend(check_ensembles(configs))
    findings.extend(_release_schema_findings(folders, release))
    return said_once(findings, Path(repository)), release_text, why


def said_once(findings: list[Finding], repository: Path) -> list[Finding]:
    """A warning that several models share word for word (the saving torch against the target's libtorch, for
    one) is said once for the run, naming the models, where it first appeared."""
    groups: dict[tuple[str, str, str | None], list[Finding]] = {}
    for f in findings:
        if f.severity == WARNING and f.model:
            groups.setdefault((f.severity, f.message, f.hint), []).append(f)
    merged: list[Finding] = []
    for f in findings:
        group = groups.get((f.severity, f.message, f.hint), [])
        if len(group) < 2:
            merged.append(f)
        elif f is group[0]:
            models = ", ".join(sorted({g.model for g in group if g.model}))
            merged.append(Finding.of(WARNING, f"{f.message} (models: {models})", file=repository, hint=f.hint,
                                     code=f.code))
    return merged


def _release_schema_findings(folders: list[Path], release: Release) -> list[Finding]:
    """Parse every config with the target release's own schema, where it can be had."""
    from compiler.triton_config.release_schema import SchemaUnavailable, parse_for_release

    texts = {f.name: layout.config_file(f).read_text() for f in folders if layout.config_file(f).is_file()}
    if not texts:
        return []
    try:
        parsed = parse_for_release(texts, release)
    except SchemaUnavailable as err:
        return [Finding.of(WARNING, f"the exact schema of Triton {release} was not checked: {err}",
                           hint="feature rules still applied; `make setup` caches every release's schema", code="L015")]
    said = [] if parsed.schema_release == release else [Finding.of(
        INFO, f"Triton {release}'s tritonclient (with its ModelConfig schema) was never published on PyPI: "
              f"the configs were parsed with {parsed.schema_release}'s, the newest earlier one", code="L015")]
    return said + [Finding.of(ERROR, f"Triton {parsed.schema_release}'s own schema rejects the config: {message}",
                              name, layout.config_file(folders[0].parent / name),
                              hint=f"remove what {release} does not know, or target a newer release", code="L014")
                   for name, message in sorted(parsed.errors.items())]
