"""Write the manifests of a target into deploy/<target>/, one object per file."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from compiler.deploy import kserve, kubernetes
from compiler.deploy.needs import server_needs
from compiler.deploy.options import DeployOptions
from compiler.deploy.resources import resources, served_specs
from compiler.errors import Problem, UserError
from compiler.manifest import LoadedManifest

TARGETS = ("kserve", "k8s")


def objects(loaded: LoadedManifest, target: str, options: DeployOptions, repository: Path) -> dict[str, dict[str, Any]]:
    """File name -> Kubernetes object."""
    release = loaded.manifest.triton_version
    if options.variant and not any(options.variant in (m.variants or {}) for m in loaded.manifest.models):
        known = sorted({v for m in loaded.manifest.models for v in (m.variants or {})})
        raise UserError(Problem(f"no model declares the variant '{options.variant}'", file=loaded.path,
                                field="--variant", hint=f"variants in the manifest: {', '.join(known) or 'none'}"))
    pod = resources(repository, served_specs(loaded, options.variant), options.cpu, options.memory)
    needs = server_needs(loaded)
    if target == "kserve":
        if options.storage_uri is None:
            raise UserError(Problem("KServe pulls the repository from object storage: --storage-uri is required",
                                    field="--storage-uri", hint="publish it first: python -m compiler publish "
                                    "--storage-uri s3://bucket/path"))
        return {"inferenceservice.yaml": kserve.inference_service(options, release, pod, needs),
                "serviceaccount.yaml": kserve.service_account(options)}
    if target == "k8s":
        return {"deployment.yaml": kubernetes.deployment(options, release, pod, needs),
                "service.yaml": kubernetes.service(options),
                "hpa.yaml": kubernetes.autoscaler(options)}
    raise UserError(Problem(f"unknown target '{target}'", field="--target", hint=f"one of {', '.join(TARGETS)}"))


def to_yaml(obj: dict[str, Any], header: str) -> str:
    yaml = YAML()
    yaml.default_flow_style = False
    buffer = io.StringIO()
    yaml.dump(obj, buffer)
    return f"# {header}\n" + buffer.getvalue()


@dataclass(frozen=True)
class Deployed:
    files: list[Path]
    validation: str  # what checked the objects before they were written


def validate_objects(made: dict[str, dict[str, Any]]) -> str:
    """Every object checked offline before anything is written; an invalid one is a bug in our generator."""
    try:
        from compiler.deploy.validation import validate

        for obj in made.values():
            validate(obj)
    except ImportError:
        return "not validated: install requirements-dev.txt for kubernetes-validate and kserve"
    return "validated offline (kubernetes-validate schemas, kserve models)"


def write_deploy(loaded: LoadedManifest, target: str, options: DeployOptions, out_dir: Path,
                 repository: Path) -> Deployed:
    made = objects(loaded, target, options, repository)
    validation = validate_objects(made)
    folder = Path(out_dir) / target
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.yaml"):
        if stale.name not in made:
            stale.unlink()
    header = f"Generated from {loaded.path.name} by `python -m compiler deploy --target {target}`; edit the manifest."
    written = []
    for name, obj in made.items():
        path = folder / name
        path.write_text(to_yaml(obj, header))
        written.append(path)
    return Deployed(written, validation)
