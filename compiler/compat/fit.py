"""Findings about a TorchScript file and a target release's libtorch.

    fit = assess(Release.parse("22.02"), SavedBy(TorchVersion(2, 14), True, "build"), {"aten::linear"})
    fit.warnings[0].message   # 'saved by torch 2.14; Triton 22.02 ships libtorch 1.11 ...'
"""

from __future__ import annotations

from dataclasses import dataclass, field

from compiler.compat.pytorch_versions import (
    TorchVersion,
    first_release_with_at_least,
    libtorch_of,
    newest_known,
)
from compiler.compat.torchscript import SavedBy
from compiler.releases import Release

#: Operators with the torch release that introduced them: a libtorch older than that cannot
#: resolve the call and refuses to load the file. Only operators whose first release is
#: certain are listed (PyTorch release notes: the fused transformer fast path in 1.12,
#: scaled_dot_product_attention in 2.0).
OPERATORS_SINCE: dict[str, TorchVersion] = {
    "aten::_native_multi_head_attention": TorchVersion(1, 12),
    "aten::_transformer_encoder_layer_fwd": TorchVersion(1, 12),
    "aten::scaled_dot_product_attention": TorchVersion(2, 0),
    "aten::_scaled_dot_product_attention_math": TorchVersion(2, 0),
    "aten::_scaled_dot_product_flash_attention": TorchVersion(2, 0),
    "aten::_scaled_dot_product_efficient_attention": TorchVersion(2, 0),
}

#: Operator namespaces that every tritonserver PyTorch backend resolves.
CORE_NAMESPACES = {"aten", "prim", "quantized", "_caffe2"}
#: NGC tritonserver images build the PyTorch backend with TorchVision
#: (TRITON_PYTORCH_ENABLE_TORCHVISION=ON), which links libtorchvision's operators.
TORCHVISION = "torchvision"


@dataclass(frozen=True)
class Note:
    message: str
    hint: str | None = None

    def line(self) -> str:
        """The message and its hint on one line, as build output prints them."""
        return self.message + (f"; {self.hint}" if self.hint else "")


@dataclass
class Fit:
    libtorch: TorchVersion | None
    errors: list[Note] = field(default_factory=list)
    warnings: list[Note] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)


def _matching_releases(version: TorchVersion) -> str:
    newer = first_release_with_at_least(version)
    if newer is not None:
        return f"Triton {newer} or later (libtorch {version} or newer)"
    latest, shipped = newest_known()
    return f"no release we know ships libtorch {version} yet (the newest, {latest}, ships {shipped})"


def assess(release: Release, saved_by: SavedBy | None, ops: set[str] | None) -> Fit:
    libtorch = libtorch_of(release)
    fit = Fit(libtorch)
    if libtorch is None:
        fit.notes.append(Note(f"the libtorch version of Triton {release} is not in our table; compatibility not checked",
                              "add the release to compiler/compat/pytorch_versions.py from NVIDIA's support matrix"))
    elif saved_by is None:
        fit.notes.append(Note(f"which torch saved the model is not recorded; Triton {release} ships libtorch {libtorch}"))
    elif saved_by.version > libtorch:
        fit.warnings.append(Note(
            f"saved by {saved_by.describe()}; Triton {release} ships libtorch {libtorch} (NGC support matrix). "
            f"TorchScript is not forward-compatible: libtorch {libtorch} may refuse operators or arguments that "
            f"torch {saved_by.version} writes",
            f"export with torch {libtorch}.* to target {release}, or target a release with a libtorch as new: "
            f"{_matching_releases(saved_by.version)}"))
    for op in sorted(ops or ()):
        namespace = op.split("::", 1)[0]
        since = OPERATORS_SINCE.get(op)
        if libtorch is not None and since is not None and since > libtorch:
            fit.errors.append(Note(
                f"calls {op}, new in torch {since}; libtorch {libtorch} of Triton {release} does not have it, so the "
                "model will not load there",
                f"target {_matching_releases(since)}, or change the model code to avoid it"))
        elif namespace == TORCHVISION:
            fit.notes.append(Note(
                f"calls {op}: NGC tritonserver images provide torchvision operators (their PyTorch backend is built with "
                "TorchVision); a custom build with TRITON_PYTORCH_ENABLE_TORCHVISION=OFF does not"))
        elif namespace not in CORE_NAMESPACES:
            fit.warnings.append(Note(
                f"calls the custom operator {op}: the tritonserver image does not provide '{namespace}' operators, so "
                "the model fails to load with 'Unknown builtin op'",
                f"build an image that loads the library registering {namespace}:: (e.g. LD_PRELOAD=/opt/lib{namespace}.so)"))
    return fit
