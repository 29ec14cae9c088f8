"""How Triton's PyTorch backend names the inputs and outputs of an AOTInductor (.pt2) package.

Pure Python, shared like binding_rules.py: the compiler predicts the names at build time, the embedded backend
applies them at serving time. The names come from the package's call spec (AOTIModelPackageLoader::
get_call_spec(): two pytree specs as JSON, the inputs' `(args, kwargs)` and the output's), as pytorch_backend's
src/pt2/model_state.cc derives them (26.05 on):

* inputs: ``ARGS[i]`` (and ``ARGS[i][key]`` below a container) for positional arguments, ``KWARGS[name]`` for
  keyword arguments; ``INPUT__<n>`` is the n-th of them all (26.03 on);
* outputs: ``RESULT`` for a lone Tensor, else ``RESULT[i]`` / ``RESULT[key]`` (nested: ``RESULT[i][key]``);
  ``OUTPUT__<n>`` is the n-th leaf (26.03 on).

Only Tensor, tuple, list and dict are allowed in the spec. `load_package` opens a package as that backend does
(the only function here that needs torch).

    names = CallSpec.parse(in_json, out_json)
    names.inputs     # {"KWARGS[input_ids]": 0, "KWARGS[attention_mask]": 1, "INPUT__0": 0, "INPUT__1": 1}
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

TYPES = {"builtins.tuple": "tuple", "builtins.list": "list", "builtins.dict": "dict", None: "tensor"}
ORDINAL_INPUT = re.compile(r"^INPUT__(\d+)$")
ORDINAL_OUTPUT = re.compile(r"^OUTPUT__(\d+)$")
FORWARD_BASED = re.compile(r"^(ARGS(\[[^\]]+\])+|KWARGS\[[^\]]+\](\[[^\]]+\])*|RESULT(\[[^\]]+\])*)$")


#: The variable a package's generated run_impl reads (once per process, at its first run) to check its inputs
#: (torch/_inductor/codegen/cpp_wrapper_cpu.py: getenv("AOTI_RUNTIME_CHECK_INPUTS")). NVIDIA's pytorch_backend
#: runs packages inside tritonserver, so the server's environment decides: `deploy` and `container-files` set it,
#: the embedded server's environment has it (server/distribution.py), and the build, a `pt2:` source and `check` set
#: it for their own runs.
RUNTIME_CHECKS_ENV = "AOTI_RUNTIME_CHECK_INPUTS"


def load_package(path: str) -> Any:
    """The package's runner, AOTIModelPackageLoader (its model "model", one runner, the package's device), made as
    pytorch_backend makes it and as torch._inductor.aoti_load_package does inside, less the import of torch._inductor
    that comes with that call: the import doubled the CPU a stub spends starting (measured for MiniLM's package: 5.7
    against 2.9 CPU-s), and every model instance is a stub. A torch whose loader takes other arguments is opened
    through aoti_load_package."""
    import torch

    try:
        return torch._C._aoti.AOTIModelPackageLoader(path, "model", False, 1, -1)
    except TypeError:
        return torch._inductor.aoti_load_package(path).loader


class UnsupportedSpec(ValueError):
    """A call spec with something other than Tensor, tuple, list and dict."""


@dataclass
class Node:
    kind: str  # tensor | tuple | list | dict
    keys: list[str] = field(default_factory=list)
    children: list[Node] = field(default_factory=list)

    @classmethod
    def parse(cls, spec: dict[str, Any]) -> Node:
        kind = spec.get("type")
        if kind not in TYPES:
            raise UnsupportedSpec(f"a {kind} in the call spec; only Tensor, tuple, list and dict are served")
        context = spec.get("context")
        keys = json.loads(context) if isinstance(context, str) and context != "null" else (context or [])
        return cls(TYPES[kind], [str(k) for k in keys or []], [cls.parse(c) for c in spec.get("children_spec") or []])

    def names(self) -> list[str]:
        """The bracketed paths of the leaves, in flattening order ("[0]", "[logits]", "[0][boxes]")."""
        if self.kind == "tensor":
            return []
        out = []
        for index, child in enumerate(self.children):
            step = f"[{self.keys[index]}]" if self.kind == "dict" else f"[{index}]"
            below = child.names()
            out.extend([step + name for name in below] if below else [step])
        return out


def _top(text: str) -> dict[str, Any]:
    version, spec = json.loads(text)
    if version != 1:
        raise UnsupportedSpec(f"call spec version {version}; this reader knows version 1")
    return dict(spec)


@dataclass(frozen=True)
class CallSpec:
    inputs: dict[str, int]  # every name the backend accepts -> position in the flat input list
    outputs: dict[str, int]  # every name -> position in the flat output list
    forward_inputs: list[str]  # the forward-based input names, in order
    forward_outputs: list[str]

    @classmethod
    def parse(cls, inputs_json: str, outputs_json: str) -> CallSpec:
        top = Node.parse(_top(inputs_json))
        if top.kind != "tuple" or len(top.children) != 2:
            raise UnsupportedSpec("the input call spec is not (args, kwargs)")
        args, kwargs = top.children
        names = ["ARGS" + n for n in args.names()]
        for key, child in zip(kwargs.keys, kwargs.children):
            below = child.names()
            names.extend([f"KWARGS[{key}]" + n for n in below] if below else [f"KWARGS[{key}]"])
        outs = result_names(Node.parse(_top(outputs_json)).names())
        return cls(positions(names, "INPUT"), positions(outs, "OUTPUT"), names, outs)


def result_names(paths: list[str]) -> list[str]:
    """The backend's names of a result's tensors from their bracketed paths in flattening order ("[0]",
    "[logits]"): RESULT[0], RESULT[logits]; a lone tensor (no path) is RESULT. The one place both the call spec's
    reader (CallSpec) and the exporter (export/aoti.py, from a pytree) name outputs."""
    return ["RESULT" + path for path in paths] or ["RESULT"]


def positions(names: list[str], ordinal: str) -> dict[str, int]:
    """Every name the backend accepts for the tensors `names` -> its position: the forward-based name, and
    <ordinal>__<position> (INPUT__0, OUTPUT__1)."""
    return {name: i for i, name in enumerate(names)} | {f"{ordinal}__{i}": i for i in range(len(names))}


def is_forward_based(name: str) -> bool:
    return bool(FORWARD_BASED.match(name))


def input_argument(name: str) -> tuple[str, int | str] | None:
    """What a manifest input name binds to before the package exists: ("position", n) for INPUT__n and ARGS[n],
    ("keyword", name) for KWARGS[name]; None for anything else (nested names included)."""
    for pattern, kind in ((r"^INPUT__(\d+)$", "position"), (r"^ARGS\[(\d+)\]$", "position"),
                          (r"^KWARGS\[([^\]]+)\]$", "keyword")):
        match = re.match(pattern, name)
        if match:
            value = match.group(1)
            return (kind, int(value)) if kind == "position" else (kind, value)
    return None


def argument_name(name: str) -> str:
    """The forward() argument an input is passed as: input_ids for KWARGS[input_ids] (any other name as it is)."""
    target = input_argument(name)
    return str(target[1]) if target is not None and target[0] == "keyword" else name
