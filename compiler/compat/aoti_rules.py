"""The release rules of AOTInductor packages (platform torch_aoti), one place for the manifest and for `check`.

    for v in aoti_violations(Release.parse("26.04"), 8, [("KWARGS[x]", "FP32")], [("RESULT", "FP32")]):
        v.field, v.index, v.message, v.hint     # ("max_batch_size", None, "batching AOTI models ...", ...)
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler.backend.pytorch import pt2_names
from compiler.releases import (
    AOTI_BATCHING_SINCE,
    AOTI_BF16_SINCE,
    AOTI_CALL_SPEC_NAMES_SINCE,
    AOTI_SINCE,
    Release,
)

#: What each name form binds to, for the message that lists them.
INPUT_FORMS = ("INPUT__<n>: the n-th tensor of the package's call spec (its positional, then keyword arguments)",
               "ARGS[<i>]: forward()'s i-th positional argument (26.05 on)",
               "KWARGS[<name>]: forward()'s argument <name>, passed by keyword (26.05 on)")
OUTPUT_FORMS = ("OUTPUT__<n>: the n-th tensor of the result",
                "RESULT: a lone Tensor; RESULT[<i>]: element i of a tuple; RESULT[<key>]: a dict's value (26.05 on)")


@dataclass(frozen=True)
class Violation:
    field: str  # export | max_batch_size | inputs | outputs
    index: int | None  # the tensor's index in inputs/outputs
    part: str  # name | dtype (for tensors)
    message: str
    hint: str


def aoti_violations(release: Release, max_batch_size: int, inputs: list[tuple[str, str]],
                    outputs: list[tuple[str, str]]) -> list[Violation]:
    """`inputs`/`outputs`: (name, API dtype such as FP32) of each tensor."""
    if not release.at_least(AOTI_SINCE):
        return [Violation("export", None, "", f"AOTI packages need Triton's torch_aoti platform, which arrives in "
                          f"{AOTI_SINCE} (server 2.67); Triton {release} serves TorchScript only",
                          f"export with `trace` (or script) for {release}, or target {AOTI_SINCE} or later")]
    found = []
    if max_batch_size > 0 and not release.at_least(AOTI_BATCHING_SINCE):
        found.append(Violation("max_batch_size", None, "", f"batching AOTI models (max_batch_size > 0) arrives in "
                               f"{AOTI_BATCHING_SINCE}; Triton {release} serves PT2 packages one request at a time",
                               f"set max_batch_size: 0, or target {AOTI_BATCHING_SINCE} or later"))
    names_ok = release.at_least(AOTI_CALL_SPEC_NAMES_SINCE)
    for kind, items, forms, ordinal in (("inputs", inputs, INPUT_FORMS, pt2_names.ORDINAL_INPUT),
                                        ("outputs", outputs, OUTPUT_FORMS, pt2_names.ORDINAL_OUTPUT)):
        for index, (name, dtype) in enumerate(items):
            found.extend(_dtype(release, kind, index, name, dtype))
            if ordinal.match(name):
                continue
            if pt2_names.is_forward_based(name) and name.startswith("RESULT") == (kind == "outputs"):
                if not names_ok:
                    found.append(Violation(
                        kind, index, "name", f"'{name}': names that follow forward() (ARGS, KWARGS, RESULT) arrive in "
                        f"{AOTI_CALL_SPEC_NAMES_SINCE}; Triton {release} names AOTI tensors by position only",
                        f"rename it {'INPUT' if kind == 'inputs' else 'OUTPUT'}__{index}, or target "
                        f"{AOTI_CALL_SPEC_NAMES_SINCE} or later"))
                continue
            usable = forms if names_ok else forms[:1]
            found.append(Violation(
                kind, index, "name", f"'{name}' is not a name Triton {release} gives an AOTI {kind[:-1]}; the valid "
                "forms: " + "; ".join(usable),
                "e.g. KWARGS[input_ids] for forward(input_ids, ...), or INPUT__0" if kind == "inputs"
                else "omit outputs: in the manifest to have them derived and named"))
    return found


def _dtype(release: Release, kind: str, index: int, name: str, dtype: str) -> list[Violation]:
    if dtype == "BYTES":
        return [Violation(kind, index, "dtype", f"{name}: TYPE_STRING cannot be an AOTI tensor (a package takes and "
                          "returns Tensors only)", "tokenize outside the model and pass INT64 ids")]
    if dtype == "BF16" and not release.at_least(AOTI_BF16_SINCE):
        return [Violation(kind, index, "dtype", f"{name}: BF16 inputs and outputs of AOTI models arrive in "
                          f"{AOTI_BF16_SINCE}; Triton {release} refuses them",
                          f"use FP16 or FP32, or target {AOTI_BF16_SINCE} or later")]
    return []
