"""Where the compiler keeps what it downloads or creates outside a clone: one place for every cache.

    cache_root() / "schemas"      # each release's ModelConfig schema, the tritonclient wheels
    cache_root() / "toolchains"   # venvs with the torch a target image ships (compiler/export/toolchain.py)

TRITON_COMPILER_CACHE moves it (the Makefile's VENV_CACHE is the same folder by default).
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    return Path(os.environ.get("TRITON_COMPILER_CACHE", Path.home() / ".cache" / "triton-repo-compiler"))
