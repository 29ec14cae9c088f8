"""What a saved TorchScript file tells about the torch that wrote it and the operators it calls."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compiler.compat.pytorch_versions import TorchVersion

#: Records that torch writes into a TorchScript zip only from some version on. `byteorder` is
#: documented in PyTorch's serialization notes as "added in PyTorch 2.1.0"; the
#: `.data/serialization_id` record arrived in the same release (pytorch PR 100994).
_RECORDS_SINCE = {"byteorder": TorchVersion(2, 1), ".data/serialization_id": TorchVersion(2, 1)}


@dataclass(frozen=True)
class SavedBy:
    version: TorchVersion
    exact: bool  # False: a lower bound read from the archive's records
    evidence: str

    def describe(self) -> str:
        return f"torch {self.version}" if self.exact else f"torch {self.version} or newer ({self.evidence})"


def saved_by_lower_bound(path: Path) -> SavedBy | None:
    """The oldest torch that could have written `path`, from the records in its archive."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return None
    best: SavedBy | None = None
    for name in names:
        record = name.split("/", 1)[1] if "/" in name else name
        since = _RECORDS_SINCE.get(record)
        if since is not None and (best is None or since > best.version):
            best = SavedBy(since, exact=False, evidence=f"its archive has the '{record}' record, new in torch {since}")
    return best


def operators(module: Any) -> set[str]:
    """Every operator (namespace::name) that the module's methods call, nested blocks and submodules included."""
    found: set[str] = set()
    seen: set[int] = set()

    def walk_nodes(owner: Any) -> None:  # a graph, or a block nested in one (if, loop)
        for node in owner.nodes():
            found.add(node.kind())
            for block in node.blocks():
                walk_nodes(block)

    def walk_module(mod: Any) -> None:
        if id(mod) in seen:
            return
        seen.add(id(mod))
        for name in getattr(mod, "_method_names", lambda: [])():
            method = getattr(mod, name, None)
            graph = getattr(method, "graph", None)
            if graph is not None:
                walk_nodes(graph)
        for child in mod.children():
            walk_module(child)

    walk_module(module)
    if hasattr(module, "inlined_graph"):
        walk_nodes(module.inlined_graph)
    return {kind for kind in found if not kind.startswith("prim::")}
