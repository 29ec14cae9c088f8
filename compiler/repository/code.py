"""The compiler's own import graph, read from its source without importing anything (imports at module level and
inside functions alike; those under `if TYPE_CHECKING:` are for annotations only and do not count): what a build runs,
from which fingerprint.compiler_code_hash derives the code a build depends on, and what tests/test_layers.py holds
to the layers.

    graph = import_graph(Path("compiler"))             # {"compiler.build.models": {"compiler.export", ...}, ...}
    closure(graph, ["compiler.build.models"])            # every module that import reaches, itself included
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

#: Files copied into pipeline steps as they are: they import nothing of the compiler, and nothing imports them by
#: the graph's rules (the build copies them; pipeline/proof.py runs them).
RUNTIME = "runtime"


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_file(name: str, root: Path) -> Path | None:
    """The file of module `name` under `root` (the compiler package's folder), or None where it names no module."""
    base = root.parent / name.replace(".", "/")
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def imports_of(path: Path, root: Path) -> set[str]:
    """The compiler modules `path` imports at run time."""
    tree = ast.parse(path.read_text())
    typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                   and "TYPE_CHECKING" in ast.unparse(block.test) for n in ast.walk(block)}
    targets = set()
    package = root.name
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == package:
            for alias in node.names:  # `from compiler.x import y`: module y where there is one, else x
                name = f"{node.module}.{alias.name}"
                targets.add(name if module_file(name, root) else node.module)
        elif isinstance(node, ast.Import):
            targets |= {alias.name for alias in node.names if alias.name.split(".")[0] == package}
    return targets - {module_name(path, root)}


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the compiler modules it imports, for every module under `root` but the runtime files."""
    return {module_name(path, root): imports_of(path, root) for path in sorted(root.rglob("*.py"))
            if RUNTIME not in path.relative_to(root).parts}


def closure(graph: dict[str, set[str]], starts: Iterable[str]) -> set[str]:
    """Every module that importing `starts` runs: what they import, transitively, and each one's parent packages."""
    seen: set[str] = set()
    pending = list(starts)
    while pending:
        name = pending.pop()
        while name and name not in graph:  # an attribute of a package, or a name no file holds
            name = name.rpartition(".")[0]
        if not name or name in seen:
            continue
        seen.add(name)
        pending += list(graph[name])
        parent = name.rpartition(".")[0]
        if parent:
            pending.append(parent)
    return seen
