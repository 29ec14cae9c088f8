"""Where the tritonserver of the ``nvidia-pytriton`` wheel lives, and a
backend directory that serves ``pytorch_libtorch`` models without libtorch.

    layout = prepare_backends(Path("/tmp/work"))
    layout.tritonserver, layout.backend_directory, layout.environment()
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import compiler.backend
from compiler.errors import Problem, ServerError

#: Our runtime backends (compiler/backend/<name>/model.py), shipped into tritonserver's backend directory.
OUR_BACKENDS = Path(compiler.backend.__file__).parent


@dataclass(frozen=True)
class ServerLayout:
    tritonserver: Path
    library_path: Path
    backend_directory: Path
    python_bin: Path

    def environment(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """tritonserver's environment: its bundled libraries, and our venv first on PATH.

        The Python backend stub is an embedded interpreter that finds packages
        (torch) through the first ``python`` on PATH; it must be this venv's.
        """
        env = dict(os.environ if base is None else base)
        libs = str(self.library_path)
        env["LD_LIBRARY_PATH"] = f"{env['LD_LIBRARY_PATH']}:{libs}" if env.get("LD_LIBRARY_PATH") else libs
        env["PATH"] = f"{self.python_bin}:{env.get('PATH', '')}"
        env.setdefault("PYTHONNOUSERSITE", "1")
        return env


def pytriton_root() -> Path:
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise ServerError(
            Problem(
                "the embedded tritonserver is not installed (package nvidia-pytriton)",
                hint="run `make setup`, or `pip install nvidia-pytriton==0.7.0` in this environment",
            )
        )
    return Path(next(iter(spec.submodule_search_locations)))


def prepare_backends(workdir: Path, our_backends: Path = OUR_BACKENDS) -> ServerLayout:
    """Lay out ``<workdir>/backends/{python,pytorch}`` for one server run."""
    root = pytriton_root()
    dist = root / "tritonserver"
    binary = dist / "bin" / "tritonserver"
    libs = root.parent / "nvidia_pytriton.libs"
    if not libs.is_dir():
        libs = dist / "external_libs"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = dist / "python_backend_stubs" / version / "triton_python_backend_stub"
    for needed in (binary, stub, dist / "backends" / "python" / "libtriton_python.so"):
        if not needed.exists():
            raise ServerError(Problem(f"the nvidia-pytriton wheel lacks {needed}", hint="reinstall nvidia-pytriton==0.7.0"))

    backends = workdir / "backends"
    python_dir = backends / "python"
    python_dir.mkdir(parents=True, exist_ok=True)
    for item in (dist / "backends" / "python").iterdir():
        if item.is_file():
            shutil.copy2(item, python_dir / item.name)
    shutil.copy2(stub, python_dir / "triton_python_backend_stub")
    for backend in sorted(p for p in our_backends.iterdir() if (p / "model.py").is_file()):
        shutil.copytree(backend, backends / backend.name, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    return ServerLayout(binary, libs, backends, Path(sys.executable).parent)
