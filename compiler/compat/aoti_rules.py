"""The release rules of AOTInductor packages (platform torch_aoti), one place for the manifest and for `check`.

Each rule is what NVIDIA's pytorch_backend does at a release branch, read in its pinned sources and seen through the
library built from them (compiler/backend/nvidia/; tests/backend/test_backend_facts.py serves a probe package per
rule through each branch). A target release is held to the rules of the branch that serves it
(backend/nvidia/sources.py: its own, else the newest older one): a release after r26.05, the newest branch we have,
gets r26.05's rules, because a change after it is not in any source we can read. The server release notes' claims
of AOTI batching from 26.07 and BF16 from 26.11 are such changes: unverified, they allow nothing.

    for v in aoti_violations(Release.parse("26.04"), 8, [("INPUT__0", "FP32")], [("OUTPUT__0", "FP32")], True):
        v.field, v.index, v.message, v.hint     # ("dynamic_batching", None, "pytorch_backend r26.04: ...", ...)
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler.backend.nvidia.sources import BRANCHES, branch_for
from compiler.backend.pytorch import pt2_names
from compiler.releases import AOTI_CALL_SPEC_NAMES_SINCE, AOTI_SINCE, Release

#: What each name form binds to, for the message that lists them.
INPUT_FORMS = ("INPUT__<n>: the n-th tensor of the package's call spec (its positional, then keyword arguments)",
               "ARGS[<i>]: forward()'s i-th positional argument (26.05 on)")
OUTPUT_FORMS = ("OUTPUT__<n>: the n-th tensor of the result",
                "RESULT: a lone Tensor; RESULT[<i>]: element i of a tuple; RESULT[<key>]: a dict's value (26.05 on)")


@dataclass(frozen=True)
class BackendFact:
    """A behaviour of pytorch_backend's AOTI path, with where its sources show it, per branch."""

    code: str
    branches: tuple[str, ...]  # the pytorch_backend branches whose sources (and built library) show it
    source: str  # file:line in those branches
    what: str

    def holds_for(self, release: Release) -> bool:
        return branch_for(release).ref in self.branches


#: The AOTI facts of the pinned branches (compiler/backend/nvidia/sources.py has their commits; docs/aoti.md says
#: what each looks like).
MERGED_RESPONSES = BackendFact(
    "AOTI-MERGE", ("r26.03", "r26.04", "r26.05"),
    "src/pt2/model_instance_state.cc:1166 (r26.03, r26.04), :1096 (r26.05): first_dim_batching false",
    "requests the dynamic batcher merges are answered wrong (each gets the whole batch's output shape, read past "
    "its end); one request at any batch size is right")
TWO_INPUTS = BackendFact(
    "AOTI-INPUT-COUNT", ("r26.03", "r26.04"),
    "src/pt2/model_instance_state.cc:1827: the two call-spec strings counted as inputs",
    "a package loads only when its config has exactly two inputs")
KEYWORDS = BackendFact(
    "AOTI-KWARGS", ("r26.05",),
    "src/pt2/model_state.cc:473, src/pt2/call_spec.cc:550",
    "keyword arguments cannot be named KWARGS[<name>] (it names them KWARGS<name>), and a package called with "
    "keywords only does not load")
NO_BF16 = BackendFact(
    "AOTI-BF16", ("r26.03", "r26.04", "r26.05"),
    "src/libtorch_utils.cc:105-139: no BF16 in the type map",
    "TYPE_BF16 inputs and outputs are refused at load")
FACTS = (MERGED_RESPONSES, TWO_INPUTS, KEYWORDS, NO_BF16)

#: TorchScript's path (platform pytorch_libtorch), for the pipelines' encoder (`fuse:`): a ragged input arrives as one
#: flat tensor of every request's elements, and each batch input as one more forward() argument, in every branch.
#: branch -> where its sources do it (the input loop's ragged branch, then the batch inputs).
RAGGED_LINES = {"r24.10": "src/libtorch.cc:2094, :2188", "r26.03": "src/pt/model_instance_state.cc:1125, :1226",
                "r26.04": "src/pt/model_instance_state.cc:1131, :1232",
                "r26.05": "src/pt/model_instance_state.cc:1117, :1218"}
RAGGED_LIBTORCH = BackendFact(
    "LIBTORCH-RAGGED", tuple(RAGGED_LINES), "; ".join(f"{lines} ({ref})" for ref, lines in RAGGED_LINES.items()),
    "allow_ragged_batch inputs are passed flat ([total elements]) and batch_input tensors as forward() arguments "
    "named by target_name")


def ragged_batching(release: Release) -> str:
    """Which backend serves `release`'s encoders ragged, and where its sources show it (the build says it); "" where
    no branch we have shows it."""
    ref = branch_for(release).ref
    if ref not in RAGGED_LINES:
        return ""
    return _said(RAGGED_LIBTORCH, release).replace(RAGGED_LIBTORCH.source, RAGGED_LINES[ref])


def _said(fact: BackendFact, release: Release) -> str:
    branch = branch_for(release)
    which = "the oldest" if release < Release.parse(branch.ref.removeprefix("r")) else \
        "the newest" if branch == BRANCHES[-1] else "the nearest older"
    held = "" if branch.ref == f"r{release}" else f", which serves Triton {release} ({which} branch we have)"
    return f"pytorch_backend {branch.ref}{held}: {fact.what} [{fact.code}: {fact.source}]"


def unmergeable(release: Release) -> str | None:
    """Why the backend that serves `release` answers merged requests to a package wrong, or None where it merges."""
    return _said(MERGED_RESPONSES, release) if MERGED_RESPONSES.holds_for(release) else None


@dataclass(frozen=True)
class Violation:
    field: str  # export | max_batch_size | dynamic_batching | inputs | outputs
    index: int | None  # the tensor's index in inputs/outputs
    part: str  # name | dtype (for tensors)
    message: str
    hint: str
    code: str  # of its rule in compiler/rulebook.py


def _keyword(name: str) -> bool:
    target = pt2_names.input_argument(name)
    return target is not None and target[0] == "keyword"


def aoti_violations(release: Release, max_batch_size: int, inputs: list[tuple[str, str]],
                    outputs: list[tuple[str, str]], dynamic_batching: bool = False) -> list[Violation]:
    """`inputs`/`outputs`: (name, API dtype such as FP32) of each tensor; `dynamic_batching`: the config (or one of
    its variants) asks for dynamic batching that can merge requests (not preferred_batch_size [1] with no delay)."""
    if not release.at_least(AOTI_SINCE):
        return [Violation("export", None, "", f"AOTI packages need Triton's torch_aoti platform, which arrives in "
                          f"{AOTI_SINCE} (server 2.67); Triton {release} serves TorchScript only",
                          f"export with `trace` (or script) for {release}, or target {AOTI_SINCE} or later", "A101")]
    found = []
    if dynamic_batching and max_batch_size > 0 and MERGED_RESPONSES.holds_for(release):
        found.append(Violation("dynamic_batching", None, "", _said(MERGED_RESPONSES, release),
                               "write preferred_batch_size: [1] with no queue delay (each request runs alone, at "
                               "the batch size it sends, queued under its queue policy), or export with `trace`: "
                               "TorchScript's path merges requests right", "A102"))
    if TWO_INPUTS.holds_for(release) and len(inputs) != 2:
        found.append(Violation("inputs", None, "", _said(TWO_INPUTS, release) + f"; this model has {len(inputs)}",
                               f"export with `trace` for {release}, or target {AOTI_CALL_SPEC_NAMES_SINCE} or later", "A103"))
    keyword = {i for i, (name, _) in enumerate(inputs) if _keyword(name)}
    if KEYWORDS.holds_for(release):
        found.extend(Violation("inputs", index, "name", f"'{inputs[index][0]}': " + _said(KEYWORDS, release),
                               "pass it positionally: name it ARGS[<i>] for forward()'s i-th parameter (or "
                               "INPUT__<n>)", "A104") for index in sorted(keyword))
    names_ok = release.at_least(AOTI_CALL_SPEC_NAMES_SINCE)
    for kind, items, forms, ordinal in (("inputs", inputs, INPUT_FORMS, pt2_names.ORDINAL_INPUT),
                                        ("outputs", outputs, OUTPUT_FORMS, pt2_names.ORDINAL_OUTPUT)):
        for index, (name, dtype) in enumerate(items):
            found.extend(_dtype(release, kind, index, name, dtype))
            if ordinal.match(name) or (kind == "inputs" and index in keyword and KEYWORDS.holds_for(release)):
                continue
            if pt2_names.is_forward_based(name) and name.startswith("RESULT") == (kind == "outputs"):
                if not names_ok:
                    found.append(Violation(
                        kind, index, "name", f"'{name}': names that follow forward() (ARGS, RESULT) arrive in "
                        f"{AOTI_CALL_SPEC_NAMES_SINCE}; Triton {release} names AOTI tensors by position only",
                        f"rename it {'INPUT' if kind == 'inputs' else 'OUTPUT'}__{index}, or target "
                        f"{AOTI_CALL_SPEC_NAMES_SINCE} or later", "A107"))
                continue
            usable = forms if names_ok else forms[:1]
            found.append(Violation(
                kind, index, "name", f"'{name}' is not a name Triton {release} gives an AOTI {kind[:-1]}; the valid "
                "forms: " + "; ".join(usable),
                "e.g. ARGS[0] for forward(input_ids, ...), or INPUT__0" if kind == "inputs"
                else "omit outputs: in the manifest to have them derived and named", "A107"))
    return found


def _dtype(release: Release, kind: str, index: int, name: str, dtype: str) -> list[Violation]:
    if dtype == "BYTES":
        return [Violation(kind, index, "dtype", f"{name}: TYPE_STRING cannot be an AOTI tensor (a package takes and "
                          "returns Tensors only)", "tokenize outside the model and pass INT64 ids", "A106")]
    if dtype == "BF16" and NO_BF16.holds_for(release):
        return [Violation(kind, index, "dtype", f"{name}: " + _said(NO_BF16, release),
                          "use FP16 or FP32 at the model's edge (cast inside forward()), or export with `trace`",
                          "A105")]
    return []
