"""Where the compiler keeps what it downloads or creates outside a clone: one place for every cache, and the one
way a cached venv is made.

    cache_root() / "schemas"      # each release's ModelConfig schema, the tritonclient wheels
    cache_root() / "pytorch-backend"                     # NVIDIA's pytorch_backend, built (backend/nvidia/build.py)
    venv_folder("torch-<version>", "toolchains")         # the torch a target image ships (build/toolchain.py)
    venv_folder("torch-<version>", "proof-venvs")        # the cross-version proof's torch (compat/cross_proof.py)
    venv_folder("model-analyzer-<version>")              # Model Analyzer (profiling/model_analyzer.py)
    venv_folder("anchors-<key>")                         # the bench's anchors (bench/anchors.py)

Every cached venv's folder is named by venv_folder (`<name>-py<major><minor>`: a venv belongs to one Python).

TRITON_COMPILER_CACHE moves it (the Makefile's VENV_CACHE is the same folder by default).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

#: inside a cached venv: the requirements installed into it, one per line (written after pip succeeded)
INSTALLED = ".installed"


def cache_root() -> Path:
    return Path(os.environ.get("TRITON_COMPILER_CACHE", Path.home() / ".cache" / "triton-repo-compiler"))


def venv_folder(name: str, group: str | None = None) -> Path:
    """The folder of the cached venv `name` (in `group`, a subfolder, where given), for this Python."""
    folder = f"{name}-py{sys.version_info[0]}{sys.version_info[1]}"
    return cache_root() / group / folder if group else cache_root() / folder


class InstallFailed(Exception):
    """pip could not install the requirements; `errors` are pip's ERROR lines (else its last two)."""

    def __init__(self, requirements: Sequence[str], stderr: str) -> None:
        lines = stderr.splitlines()
        self.errors = " ".join([line for line in lines if line.startswith("ERROR")] or lines[-2:])
        super().__init__(f"pip could not install {' '.join(requirements)}: {self.errors}")


def cached_venv(folder: Path, requirements: Sequence[str], what: str,
                progress: Callable[[str], None] = lambda _: None, share: Path | None = None) -> Path:
    """The python of a venv at `folder` that holds `requirements` (`what` names it in progress lines): made on first
    use, topped up when a requirement is new to it, and removed again when its first install fails (InstallFailed),
    so that a broken venv is never taken for a made one. Two processes that want one venv (two builds, two test
    workers) take turns: the second finds it made. `share`: a site-packages folder the venv sees after its own (a
    .pth file), so that what is there (torch) is neither installed again nor changed: pip leaves a package outside
    the venv where it is, and installs another version into the venv, where it comes first."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        return _cached_venv(folder, requirements, what, progress, share)


def _cached_venv(folder: Path, requirements: Sequence[str], what: str, progress: Callable[[str], None],
                 share: Path | None = None) -> Path:
    python = folder / "bin" / "python"
    done = folder / INSTALLED
    have = set(done.read_text().splitlines()) if done.is_file() else set()
    missing = [r for r in requirements if r not in have]
    if not missing:
        return python
    fresh = not python.is_file()
    if fresh:
        progress(f"creating {what} in {folder} (once)")
        subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True, capture_output=True)
        if share is not None:
            site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  check=True, capture_output=True, text=True).stdout.strip()
            (Path(site) / "shared-site.pth").write_text(f"{share}\n")
    progress(f"installing into {what}: {' '.join(missing)}")
    pip = subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *requirements],
                         capture_output=True, text=True)
    if pip.returncode != 0:
        if fresh:
            shutil.rmtree(folder, ignore_errors=True)
        raise InstallFailed(requirements, pip.stderr)
    done.write_text("\n".join(sorted(have | set(requirements))) + "\n")
    return python
