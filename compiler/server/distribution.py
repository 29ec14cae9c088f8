"""Where the tritonserver of the ``nvidia-pytriton`` wheel lives, and its backend directory: the wheel's Python
backend, and NVIDIA's C++ PyTorch backend built here for this venv's torch (compiler/backend/nvidia/).

    layout = prepare_backends(Path("/tmp/work"), branch_for("26.11"))
    layout.tritonserver, layout.backend_directory, layout.environment(), layout.pytorch.label

`python -m compiler.server.distribution [r26.05 ...]` builds the branches named (the newest by default): make setup.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from compiler.backend.nvidia import build as native
from compiler.backend.nvidia.sources import BY_REF, NEWEST_BRANCH, Branch
from compiler.backend.pytorch import pt2_names
from compiler.errors import Problem, ServerError, UserError


@dataclass(frozen=True)
class ServerLayout:
    tritonserver: Path
    library_path: Path
    backend_directory: Path
    python_bin: Path
    #: NVIDIA's PyTorch backend in backend_directory (pytorch/, pytorch_aoti/)
    pytorch: native.NativeBackend

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
        # AOTInductor's generated code checks every input's dtype, sizes (against the ranges the package was compiled
        # for) and strides when this is set, read once per process at the first run: the guards the build compiles
        # in rely on it (export/guards.py), and NVIDIA's backend runs packages inside tritonserver's own process.
        env.setdefault(pt2_names.RUNTIME_CHECKS_ENV, "1")
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


def server_library(root: Path | None = None) -> Path:
    """The wheel's libtritonserver (auditwheel renamed it libtritonserver-<hash>.so): what backends link to."""
    root = root or pytriton_root()
    libs = root.parent / "nvidia_pytriton.libs"
    found = sorted(libs.glob("libtritonserver*.so*")) or sorted((root / "tritonserver").rglob("libtritonserver*.so*"))
    if not found:
        raise ServerError(Problem("the nvidia-pytriton wheel holds no libtritonserver", hint="reinstall nvidia-pytriton==0.7.0"))
    return found[0]


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def prepare_backends(workdir: Path, branch: Branch = NEWEST_BRANCH,
                     progress: Callable[[str], None] = _say) -> ServerLayout:
    """Lay out ``<workdir>/backends/{python,pytorch,pytorch_aoti}`` for one server run: the wheel's Python backend,
    and `branch` of NVIDIA's PyTorch backend (built first if this venv has not got it yet; `progress` says so)."""
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
    pytorch = native.ensure(branch, server_library(root), progress)

    backends = workdir / "backends"
    python_dir = backends / "python"
    python_dir.mkdir(parents=True, exist_ok=True)
    for item in (dist / "backends" / "python").iterdir():
        if item.is_file():
            shutil.copy2(item, python_dir / item.name)
    shutil.copy2(stub, python_dir / "triton_python_backend_stub")
    for name in native.BACKEND_NAMES:
        (backends / name).symlink_to(pytorch.directory / name, target_is_directory=True)
    return ServerLayout(binary, libs, backends, Path(sys.executable).parent, pytorch)


def main(argv: list[str] | None = None) -> int:
    """Build the branches named (default: the newest), for `make setup`."""
    refs = (sys.argv[1:] if argv is None else argv) or [NEWEST_BRANCH.ref]
    unknown = [ref for ref in refs if ref not in BY_REF]
    if unknown:
        print(f"no branch {', '.join(unknown)}; the branches: {', '.join(BY_REF)}", file=sys.stderr)
        return 2
    try:
        library = server_library()
        for ref in refs:
            built = native.ensure(BY_REF[ref], library, _say)
            print(f"{built.label}: {built.directory}")
    except UserError as err:
        print(err.render(), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
