"""The package's rooms in layers: every import in compiler/ (module level and inside functions alike) points to a
room at the same layer or below, and no two modules import each other, directly or around a circle. The layers,
lowest first, are written here once."""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "compiler"

#: Lowest first; a room may import its own layer's rooms and the ones below.
LAYERS: list[set[str]] = [
    {"errors", "releases", "cache"},
    {"datatypes", "backend"},
    {"rulebook"},
    {"compat"},
    {"manifest"},
    {"sources"},
    {"repository"},
    {"triton_config"},
    {"export"},
    {"server"},
    {"profiling"},
    {"pipeline"},
    {"build"},
    {"client", "validate"},
    {"verify", "check", "bench", "deploy", "importer"},
    {"reporting"},
    {"cli"},
    {"__main__", "__init__"},
]
LAYER = {room: number for number, rooms in enumerate(LAYERS) for room in rooms}


def _room(module: str) -> str:
    return module.split(".")[1] if module.count(".") else "__init__"


def _imports() -> dict[str, set[str]]:
    """Module -> the compiler modules it imports (repository/code.py: the graph the build's fingerprint reads too)."""
    from compiler.repository.code import import_graph

    return import_graph(PACKAGE)


def test_every_room_has_a_layer() -> None:
    rooms = {_room(module) for module in _imports()}
    assert rooms <= set(LAYER), f"rooms without a layer: {sorted(rooms - set(LAYER))}"


def test_no_import_goes_up_a_layer() -> None:
    upward = sorted(f"{module} -> {target}" for module, targets in _imports().items() for target in targets
                    if LAYER[_room(target)] > LAYER[_room(module)])
    assert not upward, "imports from a lower layer to a higher one:\n" + "\n".join(upward)


def test_no_import_circle() -> None:
    graph = _imports()
    known = set(graph)

    def resolve(name: str) -> str | None:  # `from compiler.x import y` may name a module or a package's attribute
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    edges = {module: {t for t in (resolve(target) for target in targets) if t and t != module}
             for module, targets in graph.items()}
    circles = []
    for start in sorted(edges):
        stack, seen = [(start, [start])], {start}
        while stack:
            node, path = stack.pop()
            for nxt in sorted(edges.get(node, ())):
                if nxt == start:
                    circles.append(" -> ".join(path + [start]))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, path + [nxt]))
    assert not circles, "import circles:\n" + "\n".join(sorted(set(circles))[:20])


def test_cached_venv_folders_are_named_in_one_place() -> None:
    """cache.venv_folder is the one way a cached venv's folder is named (`<name>-py<major><minor>`): no other module
    spells the Python tag of a folder."""
    import re

    spelled = re.compile(r"py\{sys\.version_info")
    offenders = [str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")
                 if path.name != "cache.py" and spelled.search(path.read_text())]
    assert offenders == []
