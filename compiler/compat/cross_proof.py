"""Proof in the torch the target's image ships: the model file the build wrote, loaded and run by that torch.

The build proves an export in the torch it runs. Where the release table knows the target image's PyTorch and it
is another one, the file is loaded again in a cached venv of that torch, as the image's pytorch_backend loads it
(AOTIModelPackageLoader for a package, through pt2_names.load_package, as NVIDIA's backend opens it; `torch.jit.load` for a
TorchScript file), run at every input the proof ran (the example, new values, another batch, each -1 dim at another
size), and its answers compared with the same eager references and tolerances. What fails to load (a missing
`aoti_torch_*` shim, an operator the older libtorch lacks, a file format it cannot read) or answers otherwise is a
user error naming the model and that torch.

    proved = prove_in(TorchVersion(2, 11), "aoti", Path("model.pt2"), cases, compare, progress)   # "2.11.0"

The venv holds torch (and numpy) only, at TRITON_COMPILER_CACHE/proof-venvs/torch-<major.minor>-py<version>: made
once from the package index (a CUDA build of torch: about 4.7 GB and two minutes), then reused.
`build --no-cross-proof` (BuildOptions.cross_proof; TRITON_COMPILER_CROSS_PROOF=0 to the CLI) skips it, and the build
says the file is not proved there.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compiler.backend.pytorch import pt2_names
from compiler.cache import InstallFailed, cached_venv
from compiler.cache import venv_folder as cached_venv_folder
from compiler.compat.pytorch_versions import TorchVersion

#: What the venv runs: load the file as the image's backend does, run every case, save the answers (or what failed).
RUNNER = r"""
import importlib.util, os, sys, traceback
os.environ.setdefault("AOTI_RUNTIME_CHECK_INPUTS", "1")
import torch
from torch.utils import _pytree
request = torch.load(sys.argv[1], weights_only=True)
answer = {"torch": str(torch.__version__)}
try:
    if request["kind"] == "aoti":
        spec = importlib.util.spec_from_file_location("pt2_names", sys.argv[3])
        names = importlib.util.module_from_spec(spec)
        sys.modules["pt2_names"] = names
        spec.loader.exec_module(names)
        loaded = names.load_package(request["file"])
    else:
        loaded = torch.jit.load(request["file"], map_location="cpu").eval()
except Exception as err:
    answer["error"] = ["load", f"{type(err).__name__}: {str(err).strip()}", traceback.format_exc()]
    torch.save(answer, sys.argv[2])
    sys.exit(0)
answers = []
for number, case in enumerate(request["cases"]):
    try:
        with torch.no_grad():
            if request["kind"] == "aoti":
                result = loaded.run(list(case["flat"]))
            else:
                result = loaded(*case["args"], **case["kwargs"])
        leaves, _ = _pytree.tree_flatten(result)
        answers.append([leaf for leaf in leaves if isinstance(leaf, torch.Tensor)])
    except Exception as err:
        answer["error"] = ["run", f"{type(err).__name__}: {str(err).strip()}", traceback.format_exc(), number]
        break
answer["answers"] = answers
torch.save(answer, sys.argv[2])
"""


@dataclass(frozen=True)
class Case:
    label: str
    flat: list[Any]  # tensors in the package's call order (AOTI)
    args: list[Any]  # positional tensors (TorchScript)
    kwargs: dict[str, Any]  # keyword tensors (TorchScript)
    expected: list[Any]  # eager PyTorch's outputs, flat, in the served order


class CrossProofFailed(Exception):
    """The file does not load, or does not answer like eager PyTorch, in the target's torch."""

    def __init__(self, what: str, message: str, details: str = "") -> None:
        super().__init__(message)
        self.what, self.details = what, details


class CrossProofUnavailable(Exception):
    """The target's torch cannot be installed here (offline, no wheel for this Python)."""


def venv_folder(version: TorchVersion) -> Path:
    return cached_venv_folder(f"torch-{version}", "proof-venvs")


def proof_python(version: TorchVersion, progress: Callable[[str], None]) -> Path:
    numpy = importlib.metadata.version("numpy")
    try:
        return cached_venv(venv_folder(version), [f"torch=={version}.*", f"numpy=={numpy}"],
                           f"a torch {version} venv for the cross-version proof", progress)
    except InstallFailed as err:
        raise CrossProofUnavailable(f"pip could not install torch=={version}.* here: {err.errors[-300:]}") from None


def prove_in(version: TorchVersion, kind: str, model_file: Path, cases: Sequence[Case],
             compare: Callable[[list[Any], list[Any]], str | None], progress: Callable[[str], None]) -> str:
    """Run `model_file` (kind "aoti" or "torchscript") at every case in torch `version`; returns the exact torch
    version that answered like eager at all of them. Raises CrossProofFailed, or CrossProofUnavailable."""
    import torch

    python = proof_python(version, progress)
    progress(f"prove in torch {version} (the target image's): {len(cases)} inputs")
    with tempfile.TemporaryDirectory(prefix="cross-proof-") as scratch:
        request, answer = Path(scratch) / "request.pt", Path(scratch) / "answer.pt"
        torch.save({"kind": kind, "file": str(model_file),
                    "cases": [{"flat": c.flat, "args": c.args, "kwargs": c.kwargs} for c in cases]}, request)
        run = subprocess.run([str(python), "-c", RUNNER, str(request), str(answer), pt2_names.__file__],
                             capture_output=True, text=True, timeout=1800)
        if not answer.is_file():
            tail = (run.stderr or run.stdout).strip().splitlines()[-3:]
            raise CrossProofFailed("load", f"the process that loads it in torch {version} died (exit {run.returncode}): "
                                   + " | ".join(tail), run.stderr)
        result = torch.load(answer, weights_only=True)
    exact = str(result["torch"])
    if "error" in result:
        stage, message, details = result["error"][:3]
        if stage == "load":
            raise CrossProofFailed("load", f"torch {exact} cannot load it: {_first(message)}", details)
        case = cases[int(result["error"][3])]
        raise CrossProofFailed("run", f"torch {exact} loads it, but fails at '{case.label}': {_first(message)}", details)
    for case, got in zip(cases, result["answers"]):
        detail = compare(case.expected, got)
        if detail:
            raise CrossProofFailed("answers", f"torch {exact} answers otherwise than eager PyTorch at '{case.label}': "
                                   f"{detail}")
    return exact


def _first(message: str) -> str:
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return lines[0][:400] if lines else "(no message)"
