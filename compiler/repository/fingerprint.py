"""Content fingerprints that decide whether a model must be exported again.

A model is rebuilt when anything that could change its files changes: its
manifest entry, the target release, the files its source reads (module file,
TorchScript file, weights, a transformers folder), the versions of the
libraries that export it, and the compiler's own code. Computing a
fingerprint never imports torch, so a no-op build stays fast.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from collections.abc import Sequence
from pathlib import Path

from compiler.manifest.schema import (
    ModelSpec,
    PackageSource,
    PythonSource,
    TorchscriptSource,
    TorchvisionSource,
    TransformersSource,
)
from compiler.sources.paths import PathNotFound, resolve_path

LIBRARIES = ("torch", "torchvision", "transformers", "numpy", "tritonclient", "protobuf")
_COMPILER_ROOT = Path(__file__).resolve().parent.parent


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def _hash_file(path: Path, digest: hashlib._Hash) -> None:
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    _hash_file(path, digest)
    return digest.hexdigest()


def _hash_tree(root: Path) -> str:
    if root.is_file():
        return file_sha256(root)
    digest = hashlib.sha256()
    if not root.is_dir():
        return "missing"
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        _hash_file(path, digest)
    return digest.hexdigest()


#: Where a build starts: the modules of compiler/build/ (the CLI calls them). Everything they import, transitively,
#: can change what a build writes (repository/code.py reads the imports); editing the CLI, verify, bench, check or
#: deploy exports nothing again. The runtime files a build copies into pipeline steps count too.
BUILD_ROOT = "build"


def build_code(root: Path) -> list[Path]:
    """The files whose code a build runs or copies: the import closure of compiler/build/, and the runtime files."""
    from compiler.repository.code import RUNTIME, closure, import_graph, module_file, module_name

    graph = import_graph(root)
    starts = [module_name(path, root) for path in (root / BUILD_ROOT).rglob("*.py")]
    files = [module_file(name, root) for name in closure(graph, starts)]
    runtime = [path for path in root.rglob("*.py") if RUNTIME in path.relative_to(root).parts]
    return sorted({path for path in files if path is not None} | set(runtime))


def compiler_code_hash() -> str:
    digest = hashlib.sha256()
    for path in build_code(_COMPILER_ROOT):
        digest.update(str(path.relative_to(_COMPILER_ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _source_files(model: ModelSpec, base: Path, allow: Sequence[Path]) -> dict[str, str]:
    from compiler.sources.loading import python_module_file

    source = model.source
    files: dict[str, str] = {}

    def add(label: str, text: str | None) -> None:
        if not text:
            return
        try:
            files[label] = _hash_tree(resolve_path(text, base, allow))
        except PathNotFound:
            files[label] = "unresolved"

    if isinstance(source, (TorchvisionSource, PythonSource)):
        add("weights", source.weights)
    if isinstance(source, PythonSource):
        module_file = python_module_file(source.python.partition(":")[0], base)
        files["module"] = _hash_tree(module_file.parent if module_file and module_file.name == "__init__.py"
                                     else module_file) if module_file else "missing"
    if isinstance(source, TorchscriptSource):
        add("torchscript", source.torchscript)
    if isinstance(source, PackageSource):
        add("pt2", source.pt2)
    add("tokenizer", getattr(source, "tokenizer", None))  # a tokenize step's files
    for output in model.outputs or []:
        add(f"labels:{output.name}", output.labels)
    if isinstance(source, TransformersSource):
        try:
            folder = resolve_path(source.transformers, base, allow)
            files["transformers"] = _hash_tree(folder) if folder.exists() else f"hub:{source.transformers}"
        except PathNotFound:
            files["transformers"] = "unresolved"
    return files


def fingerprint(model: ModelSpec, release: str, base: Path, code_hash: str, allow: Sequence[Path] = (),
                target_torch: str | None = None) -> str:
    record: dict[str, object] = {
        "entry": model.model_dump(mode="json"),
        "release": release,
        "files": _source_files(model, base, allow),
        "libraries": {name: _version(name) for name in LIBRARIES},
        "compiler": code_hash,
    }
    if target_torch:  # the manifest's torch for the target image: another one compiles another package
        record["target_torch"] = target_torch
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()
