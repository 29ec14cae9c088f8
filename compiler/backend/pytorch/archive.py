"""What a TorchScript file says of its forward() without torch: the archive is a zip whose data.pkl names the top
module's class first (a pickle GLOBAL, `__torch__.<module path> <Class>`), and whose code/ folder holds that class's
source as TorchScript prints it (`def forward(self: __torch__.M,\n    x: Tensor,\n    y: Tensor) -> Tensor:`).
`check --no-run` reads the argument names from there: the count the backend compares the config's inputs with.

    forward_arguments(Path("m/1/model.pt"))    # ["x", "y"], or None where the archive does not say
"""

from __future__ import annotations

import pickletools
import re
import zipfile
from pathlib import Path


def _top_class(archive: zipfile.ZipFile, root: str) -> tuple[str, str] | None:
    """(module, class) of the archive's top module: the first GLOBAL of its data.pkl."""
    try:
        data = archive.read(f"{root}/data.pkl")
        for opcode, argument, _ in pickletools.genops(data):
            if opcode.name == "GLOBAL" and isinstance(argument, str):
                module, _, name = argument.partition(" ")
                return (module, name) if module.startswith("__torch__") else None
            if opcode.name == "STACK_GLOBAL":
                return None  # protocol 4 archives name it from the stack: not read here
    except (KeyError, ValueError):
        return None
    return None


def _split_top_level(text: str) -> list[str]:
    """`x: Tensor, y: Dict[str, Tensor]` -> its parts, commas inside brackets kept."""
    parts, depth, current = [], 0, ""
    for char in text:
        if char in "[(":
            depth += 1
        elif char in "])":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [p.strip() for p in [*parts, current] if p.strip()]


def forward_arguments(path: Path) -> list[str] | None:
    """The names of forward()'s arguments after self, as the archive's code/ prints them; None where unreadable."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            root = next((n.split("/", 1)[0] for n in names if n.endswith("/data.pkl") and n.count("/") == 1), None)
            if root is None:
                return None
            top = _top_class(archive, root)
            if top is None:
                return None
            module, name = top
            source_name = f"{root}/code/{module.replace('.', '/')}.py"
            if source_name not in names:
                return None
            source = archive.read(source_name).decode("utf-8", "replace")
    except (OSError, zipfile.BadZipFile):
        return None
    block = re.search(rf"^class {re.escape(name)}\(.*?(?=^class |\Z)", source, re.MULTILINE | re.DOTALL)
    if block is None:
        return None
    signature = re.search(r"def forward\((.*?)\)\s*(->[^:]*)?:", block.group(0), re.DOTALL)
    if signature is None:
        return None
    arguments = [part.split(":")[0].split("=")[0].strip() for part in _split_top_level(signature.group(1))]
    return arguments[1:] if arguments and arguments[0] == "self" else arguments
