"""The NGC tritonserver container, for machines with a Docker engine and a GPU."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from compiler.export.aoti import RUNTIME_CHECKS_ENV
from compiler.releases import image
from compiler.server.ports import Ports


def docker_engine_available() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def nvidia_gpu_present() -> bool:
    if shutil.which("nvidia-smi") is None:
        return False
    try:
        probe = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0 and "GPU" in probe.stdout


def choose_engine(requested: str, engine_probe: Callable[[], bool] = docker_engine_available,
                  gpu_probe: Callable[[], bool] = nvidia_gpu_present) -> tuple[str, str]:
    """(engine, why): auto picks docker only where it can use a GPU."""
    if requested != "auto":
        return requested, f"--engine {requested}"
    engine, gpu = engine_probe(), gpu_probe()
    if engine and gpu:
        return "docker", "a Docker engine and an NVIDIA GPU are present"
    missing = " and ".join(what for what, ok in (("no Docker engine", engine), ("no NVIDIA GPU", gpu)) if not ok)
    return "embedded", f"{missing}: using the embedded tritonserver (nvidia-pytriton)"


def docker_command(repository: Path, ports: Ports, release: str, name: str, host: str = "127.0.0.1",
                   variant: str | None = None) -> list[str]:
    return [
        "docker", "run", "--rm", "--name", name, "--gpus=all", "--shm-size=1g",
        "-p", f"{host}:{ports.http}:8000", "-p", f"{host}:{ports.grpc}:8001", "-p", f"{host}:{ports.metrics}:8002",
        "-v", f"{Path(repository).resolve()}:/models:ro",
        # AOTInductor packages check their inputs only where this is set (compiler/deploy/needs.py)
        "-e", f"{RUNTIME_CHECKS_ENV}=1",
        image(release), "tritonserver", "--model-repository=/models",
        *([f"--model-config-name={variant}"] if variant else []),
    ]
