"""The torch that compiles: an AOTInductor package loads only in the torch major.minor that compiled it.

AOTI packages carry no cross-version promise (a package built with torch 2.3 failed to load in 2.4), so a package
for Triton 26.xx must be compiled by the torch its image ships. When that differs from the torch running the build,
the build runs in a toolchain: a venv with the target's torch, created from the package index on first use and
cached outside the clone (TRITON_COMPILER_CACHE/toolchains/torch-<major.minor>-py<version>), keyed by version.
Where pip cannot install that torch, the build is refused naming the exact version it needs.

    needed = needs_toolchain(loaded)                # the manifest's target_torch, where it is not this torch
    if needs_toolchain(loaded):
        report = build_in_toolchain(loaded, output, prints, progress, force, allow_paths)

The toolchain runs this compiler's own code (PYTHONPATH), with the libraries the manifest's sources need, at the
versions of the running environment; `python -m compiler.build.inside_toolchain REQUEST.json` is its entry point.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compiler.build.options import BuildOptions
from compiler.cache import InstallFailed, cached_venv, venv_folder
from compiler.compat.pytorch_versions import TorchVersion, running_torch
from compiler.errors import Problem, UserError

if TYPE_CHECKING:
    from compiler.build.report import BuildReport
    from compiler.manifest import LoadedManifest

Progress = Callable[[str], None]

#: Set inside a toolchain's build, so that it never delegates again.
INSIDE = "TRITON_COMPILER_IN_TOOLCHAIN"
#: What the compiler itself imports while building (pinned to the running environment's versions).
COMPILER_PACKAGES = ("numpy", "pydantic", "ruamel.yaml", "click", "protobuf", "tritonclient[grpc]")
#: What each source kind needs besides torch.
SOURCE_PACKAGES = {"transformers": ("transformers", "tokenizers", "safetensors")}
_COMPILER_ROOT = Path(__file__).resolve().parent.parent.parent


def needs_toolchain(loaded: LoadedManifest) -> TorchVersion | None:
    """The torch to compile with, where the manifest says the image's torch (`target_torch:`), it has AOTI models,
    and the running torch is another one. A torch the release table knows compiles nothing: the build compiles with
    the running torch and proves the package again in the table's (compat/cross_proof.py)."""
    if os.environ.get(INSIDE) or not any(m.export == "aoti" for m in loaded.manifest.models):
        return None
    declared = loaded.manifest.target_torch
    needed = TorchVersion.parse(declared) if declared else None
    return needed if needed is not None and needed != running_torch() else None


def folder_of(version: TorchVersion) -> Path:
    return venv_folder(f"torch-{version}", "toolchains")


def requirements(loaded: LoadedManifest, version: TorchVersion) -> list[str]:
    """pip requirements of the toolchain: the target's torch (its newest patch), the torchvision that pairs with it
    where a source needs one, and the rest at the running environment's versions."""
    wanted = [f"torch=={version}.*"]
    kinds = {next(iter(m.source.model_dump(exclude_none=True))) for m in loaded.manifest.models}
    if "torchvision" in kinds:
        # torchvision 0.(minor + 15) pairs with torch 2.minor (0.29 with 2.14, 0.20 with 2.5).
        wanted.append(f"torchvision==0.{version.minor + 15}.*" if version.major == 2 else "torchvision")
    names = list(COMPILER_PACKAGES)
    for kind in sorted(kinds):
        names.extend(SOURCE_PACKAGES.get(kind, ()))
    for model in loaded.manifest.models:
        package = _package_of(model.source.model_dump(exclude_none=True))
        if package:
            names.append(package)
    for name in dict.fromkeys(names):
        try:
            wanted.append(f"{name}=={importlib.metadata.version(name.split('[')[0])}")
        except importlib.metadata.PackageNotFoundError:
            wanted.append(name)
    return wanted


def _package_of(source: dict[str, Any]) -> str | None:
    """The distribution behind a `package://module/...` path (the module's own name, dashes for underscores)."""
    for value in source.values():
        if isinstance(value, str) and value.startswith("package://"):
            module = value[len("package://"):].split("/", 1)[0]
            found = importlib.metadata.packages_distributions().get(module)
            return found[0] if found else module.replace("_", "-")
    return None


def toolchain_python(loaded: LoadedManifest, version: TorchVersion, progress: Progress) -> Path:
    """The python of a venv with torch `version` and what the manifest's sources need: made once, then reused
    (a source kind added later is installed into it then)."""
    try:
        return cached_venv(folder_of(version), requirements(loaded, version), f"the torch {version} toolchain",
                           progress)
    except InstallFailed as err:
        raise UserError(loaded.problem(
            f"the target ships PyTorch {version}, and an AOTInductor package loads only in the torch that compiled "
            f"it; pip could not install torch=={version}.* here: {err.errors[-400:]}", _torch_line(loaded),
            field="target_torch" if loaded.manifest.target_torch else "triton_version",
            hint=f"make torch=={version}.* installable (a package index or --find-links with that wheel), or "
                 "export with `trace` for this target")) from None


def _torch_line(loaded: LoadedManifest) -> tuple[str, ...]:
    return ("target_torch",) if loaded.manifest.target_torch else ("triton_version",)


def build_in_toolchain(loaded: LoadedManifest, output: Path, prints: dict[str, str], progress: Progress,
                       options: BuildOptions, version: TorchVersion) -> BuildReport:
    """The whole build, run by the toolchain's python; its progress comes back line by line, its report or its
    user error as JSON."""
    from compiler.build.report import BuildReport

    python = toolchain_python(loaded, version, progress)
    progress(f"building in the torch {version} toolchain ({python.parent.parent})")
    with tempfile.TemporaryDirectory(prefix="toolchain-") as scratch:
        request = Path(scratch) / "request.json"
        answer = Path(scratch) / "answer.json"
        request.write_text(json.dumps({
            "manifest": str(loaded.path.resolve()), "output": str(Path(output).resolve()), "prints": prints,
            "options": options.to_request(), "answer": str(answer)}))
        env = {**os.environ, INSIDE: str(version),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(_COMPILER_ROOT), os.environ.get("PYTHONPATH")]))}
        with subprocess.Popen([str(python), "-m", "compiler.build.inside_toolchain", str(request)], stdout=subprocess.PIPE,
                              text=True, env=env) as process:
            assert process.stdout is not None
            for line in process.stdout:
                progress(line.rstrip("\n"))
        if not answer.is_file():
            raise UserError(Problem(f"the build in the torch {version} toolchain ended without an answer (exit "
                                    f"{process.returncode}); its output is above", file=loaded.path,
                                    hint=f"remove {folder_of(version)} to have it made again"))
        data = json.loads(answer.read_text())
    if "problems" in data:
        raise UserError([Problem(**{**p, "file": Path(p["file"]) if p.get("file") else None})
                         for p in data["problems"]])
    return BuildReport.from_json(json.dumps(data["report"]))
