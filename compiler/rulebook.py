"""The one rule book: every rule that `validate`, `build` and `check` hold a manifest or a repository to, each with a
stable code, the releases it applies to, where the rule comes from, and how to fix what it finds.

The code that applies a rule lives beside what it reads (check/core_rules.py restates Triton core's validation,
compat/aoti_rules.py what pytorch_backend's AOTI path does, ...); every finding and every manifest problem it makes
carries the rule's code, and this table is the one place that says what the code means. `docs/check.md`'s rule list
is written from it (`make schema`), and a test holds every code the compiler emits to an entry here.

    RULES["C110"].applies(Release.parse("24.10")), RULES["A103"].releases()
    chosen("C110", select=("C",), ignore=("C107",))      # a finding of C110 is reported
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler.releases import (
    AOTI_CALL_SPEC_NAMES_SINCE,
    AOTI_SINCE,
    CONFIG_FEATURES,
    FORWARD_ARGUMENT_NAMES_SINCE,
    MODEL_CONFIG_NAME_SINCE,
    Release,
)

ERROR, WARNING, INFO = "error", "warning", "info"

#: The families, by the code's letter, in the order the rule list is written.
FAMILIES = {
    "M": "manifest (validate, build)",
    "L": "repository layout and files",
    "C": "Triton core's validation of one config",
    "E": "ensembles",
    "R": "release features and server crashes",
    "T": "TorchScript models (platform pytorch_libtorch)",
    "A": "AOTInductor packages (platform torch_aoti)",
}

#: Sources quoted by many rules.
CORE = "core r24.10 src/model_config_utils.cc"
ENSEMBLE = "core r24.10 src/ensemble_utils.cc"
PT_BACKEND = "pytorch_backend r26.05 src/pt/model_instance_state.cc (r24.10 src/libtorch.cc)"
PT2_BACKEND = "pytorch_backend src/pt2/"


@dataclass(frozen=True)
class Rule:
    code: str
    name: str
    severity: str  # of what it finds: error, warning or info
    what: str
    source: str
    fix: str
    since: str | None = None  # the first release it applies to; None: every release we know
    before: str | None = None  # the first release it no longer applies to; None: still applies
    commands: tuple[str, ...] = ("check",)  # validate and build read a manifest; check a repository

    def applies(self, release: Release) -> bool:
        return (self.since is None or release.at_least(self.since)) and \
            (self.before is None or not release.at_least(self.before))

    def releases(self) -> str:
        if self.since and self.before:
            return f"{self.since} to before {self.before}"
        if self.since:
            return f"{self.since} on"
        return f"before {self.before}" if self.before else "all"


def _rules(*rules: Rule) -> dict[str, Rule]:
    table: dict[str, Rule] = {}
    for rule in rules:
        assert rule.code not in table, f"rule code {rule.code} given twice"
        assert rule.code[0] in FAMILIES, f"rule {rule.code} is in no family"
        table[rule.code] = rule
    return table


_MANIFEST = ("validate", "build")
#: The schema features of releases.CONFIG_FEATURES, each a rule of its own (a code stays with its feature).
FEATURE_CODES = {"TYPE_BF16": "R102", "iterative_sequence": "R103", "runtime": "R104", "is_non_linear_format_io": "R105",
                 "model_metrics": "R106"}
_EVERYWHERE = ("validate", "build", "check")

RULES = _rules(
    # -- manifest ------------------------------------------------------------------------------------------------
    Rule("M001", "manifest-unreadable", ERROR, "the manifest is missing, unreadable, not YAML or not a mapping",
         "manifest/loader.py", "create models.yaml with a `models:` list; the YAML error names its line",
         commands=_MANIFEST),
    Rule("M002", "manifest-schema", ERROR, "a key, type or value the manifest schema does not allow",
         "manifest/schema.py (docs/manifest.md is written from it)", "see the field in docs/manifest.md",
         commands=_MANIFEST),
    Rule("M003", "pipeline-wiring", ERROR, "a pipeline step that names an unknown model, or feeds a step tensors "
         "it does not take", "manifest/wiring.py", "name a model of the manifest, and wire each step's outputs to "
         "the next step's inputs", commands=_MANIFEST),
    Rule("M004", "model-name-twice", ERROR, "two models of one name (a name is a folder of the repository)",
         "manifest/loader.py", "make model names unique", commands=_MANIFEST),
    Rule("M005", "raw-config", ERROR, "a `config:` field that a typed key owns, that cannot apply to a PyTorch "
         "model, or that Triton's ModelConfig does not have", "manifest/raw_config.py (docs/manifest.md's ModelConfig "
         "table)", "use the typed key the message names, or drop the field", commands=_MANIFEST),
    # -- layout and files ----------------------------------------------------------------------------------------
    Rule("L001", "no-config", ERROR, "a model folder without config.pbtxt", "core r24.10 src/model_config_utils.cc "
         "GetNormalizedModelConfig", "every model folder needs one; `make repo` writes it from models.yaml"),
    Rule("L002", "stray-variant-file", WARNING, "configs/ holds files other than <variant>.pbtxt",
         "server PR #7185 (--model-config-name)", "keep only <variant>.pbtxt files in configs/"),
    Rule("L003", "non-numeric-folder", WARNING, "a folder whose name is not a version number: Triton ignores it",
         "core r24.10 src/model_repository_manager/model_lifecycle.cc", "move it out, or name it after a version"),
    Rule("L004", "no-version", ERROR, "no numeric version folder", "core r24.10 src/model_lifecycle.cc",
         "put the model file in 1/"),
    Rule("L005", "no-model-file", ERROR, "a version folder without the file its platform or backend loads",
         "core r24.10 src/constants.h (the default model filenames)", "export the model into it (`make repo`)"),
    Rule("L006", "no-version-in-policy", ERROR, "version_policy names versions none of which is on disk",
         f"{CORE} (at least one version must be available under the version policy)",
         "list a version the folder holds, or add its folder"),
    Rule("L007", "backend-undetermined", ERROR, "a config with neither platform nor backend, and no model file or "
         "folder suffix that names one", "core r24.10 src/model_config_utils.cc:1011 AutoCompleteBackendFields",
         'add backend: "python" (or the backend that serves it), or name the folder <name>.<backend>'),
    Rule("L008", "name-mismatch", ERROR, "the config's name differs from its folder's",
         "core r24.10 src/model_repository_manager/model_repository_manager.cc",
         "set name: to the folder's name, or rename the folder"),
    Rule("L009", "backend-autocompleted", INFO, "a config that names neither platform nor backend, completed as "
         "Triton completes it from the model's files", "core r24.10 src/model_config_utils.cc:1011",
         "say the backend in the config"),
    Rule("L010", "label-file-missing", ERROR, "an output names a label_filename the model folder lacks",
         "core r24.10 src/label_provider.cc", "copy the labels file beside config.pbtxt (`make repo` does)"),
    Rule("L011", "step-files", ERROR, "a pipeline step folder lacks a file its model.py reads (settings, runtime, "
         "tokenizer, labels, user module)", "compiler/pipeline/ (the step runtime)",
         "rebuild the repository (`make repo`): step folders are build outputs"),
    Rule("L012", "config-parse", ERROR, "config.pbtxt is not ModelConfig text", "protobuf text_format, Triton's "
         "model_config.proto", "fix the syntax at the line and column given"),
    Rule("L013", "empty-repository", ERROR, "the repository holds no model folder", "core r24.10 "
         "src/model_repository_manager/model_repository_manager.cc", "point check at a model repository"),
    Rule("L014", "release-schema", ERROR, "a config the target release's own model_config.proto does not parse "
         "(a field or enum value it lacks)", "the tritonclient wheel of the release (model_config_pb2)",
         "remove the field, or target a release that has it"),
    Rule("L015", "release-schema-unchecked", WARNING, "the target release's own schema could not be read, or an "
         "older release's stands in for it", "the tritonclient wheels (`make setup` caches them)",
         "run `make setup`"),
    # -- Triton core's validation of one config ----------------------------------------------------------------
    Rule("C101", "negative-max-batch-size", ERROR, "max_batch_size below 0", CORE,
         "0 for a model without a batch dim, else its largest batch"),
    Rule("C102", "no-data-type", ERROR, "an input or output without data_type", f"{CORE} ValidateModelInput/Output",
         "add data_type: TYPE_FP32 (or the tensor's type)"),
    Rule("C103", "preferred-above-max", ERROR, "a preferred_batch_size above max_batch_size",
         f"{CORE} ValidateModelConfig", "keep preferred sizes within 1..max_batch_size"),
    Rule("C104", "priority-level", ERROR, "a default priority level outside 1..priority_levels",
         f"{CORE} ValidateModelConfig", "a level within 1..priority_levels"),
    Rule("C105", "batch-input-source", ERROR, "a batch_input reading an input the config does not have",
         f"{CORE} ValidateBatchInput", "name one of the config's inputs"),
    Rule("C106", "cpu-group-gpus", ERROR, "a KIND_CPU instance group that lists GPUs",
         f"{CORE} ValidateInstanceGroup", "drop gpus: from the KIND_CPU group, or make it KIND_GPU"),
    Rule("C107", "batching-without-batch-dim", WARNING, "dynamic_batching with max_batch_size 0: nothing is ever "
         "merged (tritonserver 2.51 loads it)", "tests/check/cases/dynamic_batching_without_batch",
         "set max_batch_size >= 1, or remove dynamic_batching"),
    Rule("C110", "io-shape", ERROR, "dims missing or below -1 and 0; an image format without 3 dims; a reshape "
         "with another element count or other variable-size trunks; an empty reshape without a batch dim",
         f"{CORE} ValidateIOShape, ValidateModelInput", "a reshape keeps the element count"),
    Rule("C120", "batching", ERROR, "preferred sizes not positive; queue policies outside the priority levels; "
         "preserve_ordering with several levels or DELAY; the sequence batcher's preferred sizes and slot "
         "utilisation", f"{CORE} ValidateModelConfig", "keep sizes within 1..max_batch_size and levels within "
         "1..priority_levels"),
    Rule("C130", "sequence-controls", ERROR, "one tensor per control kind; a flag's false/true values of one type, "
         "exactly two; CORRID with an integer data_type and no values",
         f"{CORE} GetBooleanSequenceControlProperties, GetTypedSequenceControlProperties",
         "one control tensor per kind, with int32_false_true: [0, 1] (or fp32/bool) for flags"),
    Rule("C131", "sequence-flags", ERROR, "a start/end/ready control without false/true values, or a tensor that "
         "carries several kinds", f"{CORE} GetBooleanSequenceControlProperties",
         "add int32_false_true: [0, 1]; one control tensor per kind"),
    Rule("C140", "batch-io", ERROR, "batch inputs and outputs with other than one source, of a type other than "
         "INT32 or FP32, or naming inputs and outputs the config lacks",
         f"{CORE} ValidateBatchInput, ValidateBatchOutput", "one source_input that the config has"),
    Rule("C150", "scheduling", ERROR, "ensemble_scheduling off an ensemble; optimization on one; an ensemble "
         "without steps; a profile off TensorRT; a runtime outside the backend folder",
         f"{CORE} ValidateModelConfig", "the setting belongs to another kind of model: move or remove it"),
    Rule("C160", "warmup", ERROR, "a warmup sample above max_batch_size, with inputs the model lacks or without "
         "its required ones, without a data source, or of another data type", f"{CORE} ValidateModelWarmup",
         "give every required input once, with zero_data, random_data or input_data_file"),
    Rule("C170", "gpu-id", ERROR, "an instance group with a negative GPU id", f"{CORE} ValidateInstanceGroup",
         "list GPU ids from 0 on, or leave gpus out"),
    Rule("C180", "no-outputs", ERROR, "a PyTorch-backend model without outputs",
         "pytorch_backend r26.05 src/pt/model_instance_state.cc:1497, r24.10 src/libtorch.cc:1146",
         "declare the model's outputs"),
    Rule("C190", "runtime-missing", ERROR, "a runtime that names neither a library of the backend nor a file of "
         "the model folder", "core r24.10 src/backend_model.cc (unable to find backend library)",
         "name libtriton_<backend>.so (or model.py), or put the file in the model folder",
         since=CONFIG_FEATURES["runtime"]),
    # -- ensembles -----------------------------------------------------------------------------------------------
    Rule("E101", "ensemble-config", ERROR, "an ensemble with a backend, instance groups or warmup; a tensor written "
         "twice; inputs no step reads, outputs no step writes", f"{CORE} ValidateEnsembleSchedulingConfig",
         "keep those on the composing models; map every tensor once"),
    Rule("E102", "ensemble-dataflow", ERROR, "an ensemble tensor that never becomes ready, or is never read",
         f"{CORE} ValidateEnsembleSchedulingConfig", "every step's inputs must come from the ensemble's inputs"),
    Rule("E103", "ensemble-step-model", ERROR, "a step that runs a model, or a version, the repository lacks",
         f"{ENSEMBLE} ValidateEnsembleConfig", "add the model, or name one the repository holds"),
    Rule("E104", "ensemble-tensors", ERROR, "a step's mapping against its model: names it lacks, inputs left "
         "unmapped, a tensor of two types or shapes, a batch size above a step's, a cycle, two decoupled origins",
         f"{ENSEMBLE}:306-355", "map each name of the step's model once, with one type and shape"),
    # -- release features and crashes ---------------------------------------------------------------------------
    Rule("R101", "platform-unknown", ERROR, "a platform the release's tritonserver does not know (torch_aoti "
         f"arrives in {AOTI_SINCE})", "core src/constants.h of the release", "name a known platform, or a backend:"),
    *(Rule(code, f"{feature.lower().replace('_', '-')}-unknown", ERROR,
           f"'{feature}' in a config for a release before {CONFIG_FEATURES[feature]}",
           "the model_config.proto of the release", f"remove it, or target {CONFIG_FEATURES[feature]} or later",
           before=CONFIG_FEATURES[feature], commands=_EVERYWHERE)
      for feature, code in FEATURE_CODES.items()),
    Rule("R120", "variant-without-config-name", WARNING, "a configs/<variant>.pbtxt for a release without "
         "--model-config-name: never loaded there", "server PR #7185, cherry-picked to r24.05 as #7233",
         f"target {MODEL_CONFIG_NAME_SINCE} or later", before=MODEL_CONFIG_NAME_SINCE, commands=_EVERYWHERE),
    Rule("R130", "string-classification-crash", ERROR, "a TYPE_STRING output, which one class_count request ends "
         "the server with", "server PR #8267 (src/classification.cc), cherry-picked to r25.07 as #8309",
         "a numeric score output with label_filename for classes", before="25.07", commands=_EVERYWHERE),
    # -- TorchScript -----------------------------------------------------------------------------------------------
    Rule("T101", "torchscript-dtype", ERROR, "a datatype the release's PyTorch backend does not serve",
         "compiler/datatypes.py TABLE (pytorch_backend's type map per release)", "use a type the backend serves",
         commands=_EVERYWHERE),
    Rule("T102", "index-names-only", ERROR, "an input name other than <name>__<index> before forward() argument "
         "names bind", "pytorch_backend r22.06 src/libtorch.cc (argument-name binding)",
         f"rename it INPUT__<n>, or target {FORWARD_ARGUMENT_NAMES_SINCE} or later",
         before=FORWARD_ARGUMENT_NAMES_SINCE, commands=_EVERYWHERE),
    Rule("T103", "string-input-trace", ERROR, "a TYPE_STRING input of a model exported by tracing: example tensors "
         "cannot carry List[str]", "torch.jit.trace", "tokenize outside the model and pass INT64 ids",
         commands=_MANIFEST),
    Rule("T201", "not-torchscript", ERROR, "a model.pt that torch.jit.load cannot load", "torch.jit.load",
         "export it with torch.jit.trace or torch.jit.script, then torch.jit.save"),
    Rule("T202", "libtorch-fit", ERROR, "a file the target's libtorch may not load: saved by a newer torch, or "
         "using operators it lacks", "compiler/compat/pytorch_versions.py (NGC's PyTorch per release)",
         "export it with the torch of the target's image"),
    Rule("T203", "input-count", ERROR, "a config with more or fewer inputs than forward() takes",
         f"{PT_BACKEND}:104, :1475", "one input per forward() argument"),
    Rule("T204", "control-name", ERROR, "a sequence control input not named <name>__<index>",
         "pytorch_backend ValidateBooleanSequenceControl", "name it after its forward() position, e.g. START__1"),
    Rule("T205", "input-binding", INFO, "how each input binds to a forward() argument",
         "compiler/backend/pytorch/binding_rules.py (the backend's own reading)", "-"),
    Rule("T206", "config-order-binding", WARNING, "input names that bind in config order, silently",
         "compiler/backend/pytorch/binding_rules.py", "name the inputs after forward()'s arguments"),
    Rule("T207", "inputs-unbound", ERROR, "inputs that do not reach each forward() argument once",
         "compiler/backend/pytorch/binding_rules.py", "one input per argument, by name or <name>__<index>"),
    Rule("T208", "narrow-token-ids", ERROR, "narrow integer ids feeding an embedding (clients send INT64)",
         "the model's graph (aten::embedding)", "set data_type: TYPE_INT64"),
    Rule("T209", "baked-device", WARNING, "a device frozen into the program by tracing, against the instance "
         "groups", "the model's graph (prim::Constant devices)", "trace on the target device, or script it"),
    Rule("T210", "run-mismatch", ERROR, "a run on config-shaped inputs fails, or returns other outputs, dtypes or "
         "dims than declared", "the model itself, run in-process", "declare what the model returns"),
    Rule("T211", "guards", INFO, "what the model refuses: the guards the build compiled in (build.json)",
         "compiler/export/guards.py", "-"),
    # -- AOTInductor ------------------------------------------------------------------------------------------------
    Rule("A101", "aoti-before-26.03", ERROR, "an AOTInductor package for a release without torch_aoti",
         "server release notes 26.03 (2.67.0)", "export with `trace` (or script), or target 26.03 or later",
         before=AOTI_SINCE, commands=_EVERYWHERE),
    Rule("A102", "aoti-merge", ERROR, "dynamic batching that merges requests to a package: answered wrong "
         "(AOTI-MERGE)", f"{PT2_BACKEND}model_instance_state.cc:1166 (r26.03, r26.04), :1096 (r26.05)",
         "preferred_batch_size: [1] with no queue delay, or export with `trace`", since=AOTI_SINCE,
         commands=_EVERYWHERE),
    Rule("A103", "aoti-input-count", ERROR, "a package with other than two inputs (AOTI-INPUT-COUNT)",
         f"{PT2_BACKEND}model_instance_state.cc:1827 (r26.03, r26.04)", "export with `trace`, or target "
         f"{AOTI_CALL_SPEC_NAMES_SINCE} or later", since=AOTI_SINCE, before=AOTI_CALL_SPEC_NAMES_SINCE,
         commands=_EVERYWHERE),
    Rule("A104", "aoti-kwargs", ERROR, "a keyword argument, or a package called with keywords only (AOTI-KWARGS)",
         f"{PT2_BACKEND}model_state.cc:473, call_spec.cc:550 (r26.05)", "pass it positionally: ARGS[<i>]",
         since=AOTI_CALL_SPEC_NAMES_SINCE, commands=_EVERYWHERE),
    Rule("A105", "aoti-bf16", ERROR, "a BF16 tensor (AOTI-BF16)", "pytorch_backend src/libtorch_utils.cc:105-139 "
         "(r26.03 to r26.05)", "FP16 or FP32 at the model's edge", since=AOTI_SINCE, commands=_EVERYWHERE),
    Rule("A106", "aoti-string", ERROR, "a TYPE_STRING tensor: a package takes and returns Tensors only",
         "torch._inductor (AOTIModelPackageLoader)", "tokenize outside the model and pass INT64 ids",
         since=AOTI_SINCE, commands=_EVERYWHERE),
    Rule("A107", "aoti-name", ERROR, "a tensor name the backend does not give a package's input or output",
         f"{PT2_BACKEND}model_state.cc (names from the call spec; by position before {AOTI_CALL_SPEC_NAMES_SINCE})",
         "INPUT__<n>/OUTPUT__<n>, or ARGS[<i>]/RESULT forms from 26.05", since=AOTI_SINCE, commands=_EVERYWHERE),
    Rule("A205", "package-run-mismatch", ERROR, "a run of the package on config-shaped inputs fails, or returns "
         "other outputs, dtypes or dims than declared", "the package itself, run in-process",
         "declare what the package returns"),
    Rule("A201", "not-a-package", ERROR, "a model.pt2 that does not load as an AOTInductor package",
         "torch._inductor.aoti_load_package", "compile it with aoti_compile_and_package and the target's torch"),
    Rule("A202", "package-call-spec", INFO, "the package's call spec, as the backend names its tensors",
         "the package's call spec", "-"),
    Rule("A203", "package-names", ERROR, "config names the package's call spec does not give, or inputs that do "
         "not fill it once each", f"{PT2_BACKEND}model_state.cc", "rename the tensors after the call spec"),
    Rule("A204", "package-guards-unrecorded", WARNING, "a package without a record of its guards: an out-of-range "
         "index can abort() inside a compiled kernel", "compiler/export/guards.py",
         "rebuild it with `make repo`, and set AOTI_RUNTIME_CHECK_INPUTS=1"),
)


def chosen(code: str | None, select: tuple[str, ...] = (), ignore: tuple[str, ...] = ()) -> bool:
    """Whether a finding of `code` is reported under --select/--ignore: selected (everything when none is given)
    and not ignored; the longer selector wins where both match, as in ruff (--select C --ignore C1 --select C110
    reports C110 but no other C1)."""
    picked = max((len(p) for p in select if code and code.startswith(p)), default=0 if not select else -1)
    dropped = max((len(p) for p in ignore if code and code.startswith(p)), default=-1)
    return picked >= 0 and picked > dropped


def unknown(selectors: tuple[str, ...]) -> list[str]:
    """Selectors that match no rule (a typo, say)."""
    return [s for s in selectors if not any(code.startswith(s) for code in RULES)]


def markdown() -> str:
    """The rule list of docs/check.md."""
    lines = []
    for letter, family in FAMILIES.items():
        lines += [f"### {letter}: {family}", "", "| code | name | severity | releases | what it finds | source | "
                  "fix | commands |", "|---|---|---|---|---|---|---|---|"]
        for r in (r for r in RULES.values() if r.code.startswith(letter)):
            cells = [f"`{r.code}`", r.name, r.severity, r.releases(), r.what, r.source, r.fix, ", ".join(r.commands)]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


#: The lines between which docs/check.md holds markdown() (`make schema` writes it; a test fails when it is stale).
DOC_START = "<!-- the rule list: written by `make schema` from compiler/rulebook.py; do not edit by hand -->"
DOC_END = "<!-- end of the rule list -->"


def with_rule_list(document: str) -> str:
    """`document` (docs/check.md) with the rule list between its DOC_START and DOC_END lines written anew."""
    head, start, rest = document.partition(DOC_START)
    _, end, tail = rest.partition(DOC_END)
    if not start or not end:
        raise ValueError(f"the document has no {DOC_START!r} ... {DOC_END!r} block")
    return f"{head}{DOC_START}\n\n{markdown()}\n{DOC_END}{tail}"
