"""The release rules of TorchScript models (platform pytorch_libtorch), one place for the manifest and for `check`,
as compat/aoti_rules.py is for packages: the datatypes the PyTorch backend of a release serves (datatypes.TABLE),
and how it binds inputs (by <name>__<index> only before 22.06, by forward() argument name from then on).

    for v in torchscript_violations(Release.parse("22.02"), [("x", "TYPE_FP32")], []):
        v.field, v.index, v.part, v.message, v.hint   # ("inputs", 0, "name", "input 'x': ...", "rename it INPUT__0...")
"""

from __future__ import annotations

from compiler import datatypes
from compiler.backend.pytorch.binding_rules import named_index
from compiler.compat.aoti_rules import Violation
from compiler.releases import FORWARD_ARGUMENT_NAMES_SINCE, Release


def torchscript_violations(release: Release, inputs: list[tuple[str, str]],
                           outputs: list[tuple[str, str]]) -> list[Violation]:
    """`inputs`/`outputs`: (name, datatype in either form, TYPE_FP32 or FP32) of each tensor."""
    found = []
    allowed = ", ".join(datatypes.pytorch_allowed(release))
    for field, tensors in (("inputs", inputs), ("outputs", outputs)):
        for index, (name, dtype) in enumerate(tensors):
            row = datatypes.lookup(dtype)
            if not row.known_at(release) or not row.served_by_pytorch(release):
                found.append(Violation(field, index, "dtype", f"{name}: {row.config_name} is not served by the "
                                       f"PyTorch backend of Triton {release}", f"allowed: {allowed}", "T101"))
    if not release.at_least(FORWARD_ARGUMENT_NAMES_SINCE):
        for index, (name, _) in enumerate(inputs):
            if named_index(name) is None:  # the backend's own reading of <name>__<index>
                found.append(Violation(
                    "inputs", index, "name", f"input '{name}': the PyTorch backend of Triton {release} binds inputs "
                    f"only by <name>__<index> (forward() argument names arrive in {FORWARD_ARGUMENT_NAMES_SINCE})",
                    f"rename it INPUT__{index}, or target a newer release", "T102"))
    return found
