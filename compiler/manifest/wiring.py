"""Wire a pipeline's steps: which Triton model each runs, its tensors, and which ensemble tensor feeds each input.

Steps are wired by tensor name and dtype: a step's input reads the latest tensor of that name (a model reads the
tokenizer's `KWARGS[input_ids]`), `map:` names another one, and two steps find theirs by role: `pool` reads the
latest model's token vectors (dims [-1, H]) and the tokenizer's attention mask, `classify` the latest output of
dims [C]. Every problem is a ManifestError at the step's line; `validate` runs this without any model (a model
whose outputs are neither declared nor built yet is wired by what is known).

    plan = plan_pipeline(loaded, 0)                       # or plan_pipeline(loaded, 0, outputs_of={"bert": [...]})
    plan.steps[0].model, plan.steps[0].input_map          # "embed_tokenize", {"TEXT": "TEXT"}
"""

from __future__ import annotations

import keyword
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from compiler import datatypes
from compiler.backend.pytorch.pt2_names import argument_name
from compiler.errors import ManifestError, Problem
from compiler.manifest.pipelines import PipelineSpec, Step, is_image_input
from compiler.manifest.schema import ModelSpec, OutputSpec
from compiler.manifest.step_settings import (
    EncoderSettings,
    PoolSettings,
    StepSettings,
    TokenizeSettings,
    model_settings,
    settings_of,
)

if TYPE_CHECKING:  # the loader runs this module: at run time a loaded manifest is handed in, never imported
    from compiler.manifest.loader import LoadedManifest

#: The keys a Hugging Face tokenizer returns, which a tokenize step can give a model.
TOKENIZER_KEYS = ("input_ids", "attention_mask", "token_type_ids")
STRING = "TYPE_STRING"
#: The step a tokenize step and the TorchScript model after it (and its pool step) become (`fuse:`), and the name of
#: its batch input: each text's token count (Triton's BATCH_ITEM_SHAPE).
ENCODER = "encoder"
LENGTHS = "lengths"
#: The labels file of a classify step, in its folder (label_filename) and its version folder (the runtime reads it).
CLASSIFY_LABELS = "labels.txt"


@dataclass(frozen=True)
class Tensor:
    name: str
    dtype: str  # TYPE_*
    dims: list[int]
    labels: str | None = None  # its label_filename (Triton's classification extension), in the model's folder

    def text(self) -> str:
        return f"{self.name} {self.dtype} {self.dims}"


@dataclass
class StepPlan:
    index: int  # in the pipeline's steps
    kind: str
    model: str  # the Triton model the step runs
    generated: bool  # a Python-backend step the build writes (else a model of `models:`)
    inputs: list[Tensor]
    outputs: list[Tensor]
    input_map: dict[str, str] = field(default_factory=dict)  # step input -> ensemble tensor
    output_map: dict[str, str] = field(default_factory=dict)  # step output -> ensemble tensor
    #: what the generated step needs at run time (step_settings.py: one TypedDict per kind; steps.py reads them)
    settings: StepSettings = field(default_factory=model_settings)
    manifest_model: str | None = None  # the model of `models:` it serves (tokenize, image, model)
    #: step input -> the earlier step's tensor it reads unless the step's `map:` says otherwise (pool's hidden and
    #: mask, classify's logits); an input without one reads the tensor of its own name
    reads: dict[str, str] = field(default_factory=dict)
    #: fed by a model whose outputs are not known before the build: an input it cannot find yet is not an error
    upstream_unknown: bool = False


@dataclass
class PipelinePlan:
    spec: PipelineSpec
    index: int
    inputs: list[Tensor]
    outputs: list[Tensor]
    steps: list[StepPlan]

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def models(self) -> list[str]:
        """The models of `models:` the pipeline runs or takes a tokenizer from."""
        return sorted({s.manifest_model for s in self.steps if s.manifest_model})

    @property
    def complete(self) -> bool:
        """Every step's tensors are known (a model's outputs come from the manifest or the build)."""
        return all(s.outputs is not None for s in self.steps)


class _Problems:
    def __init__(self, loaded: LoadedManifest, index: int) -> None:
        self.loaded, self.index = loaded, index
        self.found: list[Problem] = []

    def add(self, message: str, step: int | None = None, key: str | None = None, hint: str | None = None) -> None:
        loc: tuple[str | int, ...] = ("pipelines", self.index)
        field_name = None
        if step is not None:
            loc += ("steps", step) + ((key,) if key else ())
            field_name = f"steps[{step}]" + (f".{key}" if key else "")
        elif key:  # a key of the pipeline itself
            loc += (key,)
            field_name = key
        pipeline = self.loaded.manifest.pipelines[self.index].name  # type: ignore[index]
        self.found.append(self.loaded.problem(message, loc, model=pipeline, field=field_name, hint=hint, code="M003"))


def _fits(want: list[int], got: list[int]) -> bool:
    return len(want) == len(got) and all(w in (-1, g) or g == -1 for w, g in zip(want, got))


def _dtype(name: str) -> str:
    return datatypes.lookup(name).config_name


def step_model_name(spec: PipelineSpec, step: Step, index: int) -> str:
    """The Triton model a generated step becomes: <pipeline>_<kind>, with the step's number where the kind repeats."""
    kinds = [s.kind for s in spec.steps]
    suffix = step.kind if kinds.count(step.kind) == 1 else f"{step.kind}{index}"
    return f"{spec.name}_{suffix}"


def plan_pipeline(loaded: LoadedManifest, index: int,
                  outputs_of: Mapping[str, list[OutputSpec]] | None = None) -> PipelinePlan:
    """The wiring of pipeline `index`; `outputs_of`: model name -> its outputs as built (else the declared ones)."""
    spec = loaded.manifest.pipelines[index]  # type: ignore[index]
    problems = _Problems(loaded, index)
    models = {m.name: m for m in loaded.manifest.models}
    available: dict[str, tuple[str, Tensor]] = {}  # local name -> (ensemble tensor, tensor)
    taken: set[str] = set()
    steps: list[StepPlan] = []
    recent: dict[str, StepPlan] = {}  # kind -> the latest step of that kind

    def claim(local: str, owner: str) -> str:
        name = local if local not in taken else f"{owner}.{local}"
        taken.add(name)
        return name

    if spec.max_batch_size < 1:
        problems.add("a pipeline batches its requests: max_batch_size must be 1 or more (each request may carry a "
                     "batch of texts or images)", hint="set max_batch_size, at most that of its models")

    for number, step in enumerate(spec.steps):
        plan = PLANNERS[step.kind].plan(_StepContext(spec, step, number, models, outputs_of or {}, recent, problems))
        if plan is None:
            steps.append(StepPlan(number, step.kind, step.model or "?", False, [], []))
            continue
        if number == 0:
            for tensor in plan.inputs:
                available[tensor.name] = (tensor.name, tensor)
                taken.add(tensor.name)
        for tensor in plan.inputs:
            source = (step.map or {}).get(tensor.name) or plan.reads.get(tensor.name) or tensor.name
            if source not in available:
                if plan.upstream_unknown:
                    continue  # fed by a model whose outputs are not known before the build
                known = ", ".join(sorted(available)) or "none"
                problems.add(f"input '{tensor.name}' of this {step.kind} step reads '{source}', which no earlier step "
                             f"gives (the pipeline has: {known})", number, "map" if step.map else None,
                             hint=f"add `map: {{{tensor.name}: <one of those>}}` to the step")
                continue
            internal, given = available[source]
            if given.dtype != tensor.dtype or not _fits(tensor.dims, given.dims):
                problems.add(f"input '{tensor.name}' wants {tensor.dtype} {tensor.dims}, but '{source}' is "
                             f"{given.dtype} {given.dims}", number, hint="map another tensor to it, or change the "
                             "steps so that the tensors agree")
            plan.input_map[tensor.name] = internal
        for tensor in plan.outputs or []:
            internal = claim(tensor.name, plan.model)
            plan.output_map[tensor.name] = internal
            available[tensor.name] = (internal, tensor)
        recent[step.kind] = plan
        steps.append(plan)
        if plan.kind == "model":
            recent["model"] = plan

    if not problems.found:
        steps = _fused(spec, steps, models, problems)
    inputs = list(steps[0].inputs) if steps else []
    outputs = [Tensor(steps[-1].output_map.get(t.name, t.name), t.dtype, t.dims, t.labels)
               for t in steps[-1].outputs or []] if steps else []  # as the ensemble names them
    inputs = _renamed(inputs, spec.inputs, "inputs", problems)
    outputs = _renamed(outputs, spec.outputs, "outputs", problems)
    if steps and spec.inputs:
        for old, new in zip(steps[0].inputs, inputs):
            steps[0].input_map[old.name] = new.name
    if steps and spec.outputs and steps[-1].outputs:
        for old, new in zip(steps[-1].outputs, outputs):
            steps[-1].output_map[old.name] = new.name
    if problems.found:
        raise ManifestError(problems.found)
    _drop_unread(steps, outputs)
    return PipelinePlan(spec, index, inputs, outputs, steps)


def _fused(spec: PipelineSpec, steps: list[StepPlan], models: dict[str, ModelSpec],
           problems: _Problems) -> list[StepPlan]:
    """`steps` with each tokenize -> TorchScript model (-> pool) run made one encoder step (`fuse:`), where it can be;
    with `fuse: true`, a problem at that key where it cannot."""
    if spec.fuse is False:
        return steps
    out: list[StepPlan] = []
    number = 0
    fused_any = False
    reasons = []
    while number < len(steps):
        step = steps[number]
        out.append(step)
        number += 1
        if step.kind != "tokenize" or number >= len(steps):
            continue
        encoder, used, reason = _encoder(spec, step, steps[number], steps[number + 1:], models)
        if encoder is None:
            reasons.append(reason)
            continue
        # each request padded to its own longest text; the encoder merges them
        settings_of(step, TokenizeSettings)["pad"] = "request"
        out.append(encoder)
        number += used
        fused_any = True
    if spec.fuse and not fused_any:
        problems.add(f"fuse: true, but {'; '.join(r for r in reasons if r) or 'no tokenize step is followed by a model'}",
                     key="fuse", hint="fix that, or leave `fuse` out (the steps then run as written)")
    return out


def _encoder(spec: PipelineSpec, tokenize: StepPlan, model_step: StepPlan, after: list[StepPlan],
             models: dict[str, ModelSpec]) -> tuple[StepPlan | None, int, str]:
    """The encoder step that replaces `model_step` (and the pool step after it), how many steps it replaces, or why
    it cannot (None, 0, the reason)."""
    if model_step.kind != "model":
        return None, 0, f"step {model_step.index} after the tokenizer is a {model_step.kind} step, not a model"
    model = models[model_step.model]
    if model.export == "aoti":
        return None, 0, (f"model '{model.name}' is an AOTInductor package: NVIDIA's PyTorch backend answers merged "
                         "requests to a .pt2 package wrong (AOTI-MERGE, docs/aoti.md), so the encoder, which merges "
                         "requests of any length, is TorchScript only (export: trace)")
    fed = set(tokenize.output_map.values())
    if not set(model_step.input_map.values()) <= fed:
        return None, 0, f"model '{model.name}' takes inputs the tokenizer does not give"
    names = [t.name for t in model_step.inputs]
    odd = [n for n in names if not n.isidentifier() or keyword.iskeyword(n)]
    if odd:
        return None, 0, (f"model '{model.name}' input {odd[0]!r} is not a Python name, which the encoder's forward() "
                         "must take it as")
    lengths = LENGTHS
    while lengths in names:
        lengths += "_"
    pool = after[0] if after and after[0].kind == "pool" else None
    back = {internal: name for name, internal in tokenize.output_map.items()}
    keys = settings_of(tokenize, TokenizeSettings)["keys"]
    settings: EncoderSettings = {
        "kind": "encoder", "model": model.name, "inputs": names, "lengths": lengths, "outputs": [], "hidden": None,
        "mask": None, "mode": None, "normalize": False,
        "keys": {name: keys.get(back.get(source, ""), "") for name, source in model_step.input_map.items()},
        "model_outputs": [o.name for o in model_step.outputs] if model_step.outputs else None}
    if pool is not None:
        hidden = pool.input_map.get("hidden")
        position = next((n for n, o in enumerate(model_step.outputs or []) if model_step.output_map.get(o.name) == hidden),
                        None)
        if model_step.outputs and position is None:
            return None, 0, "the pool step reads token vectors that are not the model's"
        pooling = settings_of(pool, PoolSettings)
        if pooling["mode"] == "mean":
            mask = next((n for n, source in model_step.input_map.items() if source == pool.input_map.get("mask")), None)
            if mask is None:
                return None, 0, f"the pool step's attention mask is not an input of model '{model.name}'"
            settings["mask"] = mask
        settings["hidden"] = model_step.outputs[position].name if position is not None and model_step.outputs else None
        settings["mode"], settings["normalize"] = pooling["mode"], pooling["normalize"]
        settings["outputs"] = [o.name for o in pool.outputs]
        outputs, output_map = list(pool.outputs), dict(pool.output_map)
    else:
        if not model_step.outputs:  # None (typed a list: StepPlan's outputs are None until a model is built)
            return None, 0, f"the outputs of model '{model.name}' are not known before it is built"
        read = {source for later in after for source in later.input_map.values()}
        kept = [o for o in model_step.outputs if model_step.output_map.get(o.name) in read or not after]
        ragged = [o.name for o in kept if -1 in o.dims]
        if ragged:
            return None, 0, (f"model '{model.name}' output '{ragged[0]}' has a dim per token: a merged execution of "
                             "texts of different lengths cannot be split back into requests")
        # the encoder returns the kept outputs in a tuple of its own: each named for its place there (<name>__<j>,
        # the backend's NAMED_INDEX), read into the same pipeline tensors as before
        served = [f"{o.name.partition('__')[0]}__{j}" for j, o in enumerate(kept)]
        settings["outputs"] = [o.name for o in kept]
        outputs = [Tensor(name, o.dtype, o.dims, o.labels) for name, o in zip(served, kept)]
        output_map = {name: model_step.output_map[o.name] for name, o in zip(served, kept)}
    step = StepPlan(model_step.index, ENCODER, f"{spec.name}_{ENCODER}", True,
                    [Tensor(t.name, t.dtype, [-1]) for t in model_step.inputs], outputs,
                    input_map=dict(model_step.input_map), output_map=output_map, settings=settings,
                    manifest_model=model.name)
    return step, 2 if pool is not None else 1, ""


def _drop_unread(steps: list[StepPlan], outputs: list[Tensor]) -> None:
    """Triton refuses an ensemble with a tensor nobody reads: a step's outputs that no later step and no pipeline
    output take are left out of its output_map (the step still computes them)."""
    read = {tensor.name for tensor in outputs}
    for step in steps:
        read |= set(step.input_map.values())
    for step in steps:
        step.output_map = {name: tensor for name, tensor in step.output_map.items() if tensor in read}


def _renamed(tensors: list[Tensor], given: list[Any] | None, key: str, problems: _Problems) -> list[Tensor]:
    if not given:
        return tensors
    if len(given) != len(tensors):
        problems.add(f"{len(given)} {key} named, the pipeline has {len(tensors)}: "
                     f"{', '.join(t.text() for t in tensors)}", hint="name each of them, in that order")
        return tensors
    out = []
    for tensor, wanted in zip(tensors, given):
        if wanted.dtype and wanted.dtype != tensor.dtype or wanted.dims is not None and not _fits(wanted.dims,
                                                                                                  tensor.dims):
            problems.add(f"{key[:-1]} '{wanted.name}' is declared {wanted.dtype} {wanted.dims}, the pipeline gives "
                         f"{tensor.dtype} {tensor.dims}", hint="fix the declaration, or leave dtype and dims out")
        out.append(Tensor(wanted.name, tensor.dtype, tensor.dims, tensor.labels))
    return out


def _model(name: str, models: dict[str, ModelSpec], number: int, key: str, problems: _Problems) -> ModelSpec | None:
    model = models.get(name)
    if model is None:
        import difflib

        close = difflib.get_close_matches(name, list(models), n=1)
        problems.add(f"no model '{name}' in `models:`", number, key,
                     hint=f"did you mean '{close[0]}'?" if close else f"one of {', '.join(models)}")
    return model


@dataclass(frozen=True)
class _StepContext:
    """What a planner reads: the step, the manifest's models, and the steps planned before it."""

    spec: PipelineSpec
    step: Step
    number: int
    models: dict[str, ModelSpec]
    outputs_of: Mapping[str, list[OutputSpec]]
    recent: dict[str, StepPlan]  # kind -> the latest step of that kind
    problems: _Problems

    @property
    def name(self) -> str:
        return step_model_name(self.spec, self.step, self.number)

    def model(self, name: str, key: str) -> ModelSpec | None:
        return _model(name, self.models, self.number, key, self.problems)


class StepPlanner:
    """Plans one kind of step: its Triton model, tensors and run-time settings, or None (with problems said)."""

    kind: str

    def plan(self, ctx: _StepContext) -> StepPlan | None:
        raise NotImplementedError


class _ModelPlanner(StepPlanner):
    kind = "model"

    def plan(self, ctx: _StepContext) -> StepPlan | None:
        model = ctx.model(str(ctx.step.model), "model")
        if model is None:
            return None
        if model.max_batch_size < ctx.spec.max_batch_size:
            ctx.problems.add(f"model '{model.name}' takes batches of at most {model.max_batch_size}, the pipeline's "
                             f"max_batch_size is {ctx.spec.max_batch_size}", ctx.number, "model",
                             hint=f"lower the pipeline's max_batch_size to {model.max_batch_size}")
        outs = ctx.outputs_of.get(model.name) or model.outputs
        outputs = [Tensor(o.name, o.dtype, list(o.dims)) for o in outs] if outs else None
        return StepPlan(ctx.number, "model", model.name, False,
                        [Tensor(i.name, i.dtype, list(i.dims)) for i in model.inputs],
                        outputs, manifest_model=model.name)  # type: ignore[arg-type]


class _TokenizePlanner(StepPlanner):
    kind = "tokenize"

    def plan(self, ctx: _StepContext) -> StepPlan | None:
        settings_t = ctx.step.tokenize
        assert settings_t is not None
        model = ctx.model(settings_t.model, "tokenize")
        if model is None:
            return None
        if getattr(model.source, "transformers", None) is None and getattr(model.source, "tokenizer", None) is None:
            ctx.problems.add(f"model '{model.name}' has no tokenizer: its source is not a transformers folder",
                             ctx.number, "tokenize", hint="tokenize for a `transformers:` source (its folder, or its "
                             "`tokenizer:`), or give a `torchscript:` or `pt2:` source its `tokenizer:` folder")
            return None
        outputs = []
        keys = {}
        for spec_in in model.inputs:
            key = argument_name(spec_in.name)
            if key not in TOKENIZER_KEYS:
                ctx.problems.add(f"model '{model.name}' takes '{spec_in.name}', which a tokenizer does not give (it "
                                 f"gives {', '.join(TOKENIZER_KEYS)})", ctx.number, "tokenize",
                                 hint="name the model's inputs after the tokenizer's outputs (or KWARGS[<them>])")
                continue
            if list(spec_in.dims) != [-1]:
                ctx.problems.add(f"model '{model.name}' input '{spec_in.name}' has dims {list(spec_in.dims)}; a "
                                 "tokenizer gives one sequence per text, dims [-1]", ctx.number, "tokenize")
            outputs.append(Tensor(spec_in.name, spec_in.dtype, [-1]))
            keys[spec_in.name] = key
        settings: TokenizeSettings = {"kind": "tokenize", "input": "TEXT", "keys": keys, "padding": settings_t.padding,
                                      "pad_to_multiple_of": settings_t.pad_to_multiple_of,
                                      "truncation": settings_t.truncation, "max_length": settings_t.max_length,
                                      "max_bytes": settings_t.max_bytes}
        return StepPlan(ctx.number, "tokenize", ctx.name, True, [Tensor("TEXT", STRING, [1])], outputs,
                        settings=settings, manifest_model=model.name)


class _ImagePlanner(StepPlanner):
    kind = "image"

    def plan(self, ctx: _StepContext) -> StepPlan | None:
        settings_i = ctx.step.image
        assert settings_i is not None
        model = ctx.model(settings_i.model, "image")
        if model is None:
            return None
        images = [i for i in model.inputs if is_image_input(datatypes.lookup(i.dtype).api_name, i.dims)]
        if len(model.inputs) != 1 or not images:
            ctx.problems.add(f"model '{model.name}' does not take one image: an image step needs one FP32 (or FP16) "
                             "input of dims [3, H, W]", ctx.number, "image")
            return None
        image = images[0]
        for size in image.dims[1:]:
            if size not in (-1, settings_i.crop):
                ctx.problems.add(f"model '{model.name}' takes images of {image.dims[1]}x{image.dims[2]}, the step "
                                 f"crops {settings_i.crop}x{settings_i.crop}", ctx.number, "image",
                                 hint=f"crop: {size}, or declare the model's H and W -1")
                break
        output = Tensor(image.name, image.dtype, [3, settings_i.crop, settings_i.crop])
        return StepPlan(ctx.number, "image", ctx.name, True, [Tensor("IMAGE", STRING, [1])], [output],
                        settings={"kind": "image", "input": "IMAGE", "output": image.name, "resize": settings_i.resize,
                                  "crop": settings_i.crop, "mean": list(settings_i.mean), "std": list(settings_i.std),
                                  "dtype": str(datatypes.lookup(image.dtype).numpy_name),
                                  "max_pixels": settings_i.max_pixels},
                        manifest_model=model.name)


class _PoolPlanner(StepPlanner):
    kind = "pool"

    def plan(self, ctx: _StepContext) -> StepPlan | None:
        settings_p = ctx.step.pool
        assert settings_p is not None
        mapped = ctx.step.map or {}
        source = ctx.recent.get("model")
        tokenized = ctx.recent.get("tokenize")
        hidden = next((o for o in (source.outputs or []) if len(o.dims) == 2 and o.dims[0] == -1), None) \
            if source else None
        unknown = source is not None and source.outputs is None
        if hidden is None and not unknown and not mapped.get("hidden"):
            ctx.problems.add("a pool step reads token vectors (dims [-1, H]) of an earlier model step, and there is "
                             "none", ctx.number, hint="put the model before it, or map: {hidden: <a tensor>}")
            return None
        keys = settings_of(tokenized, TokenizeSettings)["keys"] if tokenized else {}
        mask = next((o.name for o in (tokenized.outputs if tokenized else []) if keys.get(o.name) == "attention_mask"),
                    None)
        if settings_p.mode == "mean" and mask is None and not mapped.get("mask"):
            ctx.problems.add("mean pooling needs the tokenizer's attention mask, and no tokenize step gives one",
                             ctx.number, "pool", hint="tokenize for the model first (its inputs include "
                             "attention_mask), or use mode: cls")
            return None
        width = hidden.dims[1] if hidden is not None else -1
        dtype = hidden.dtype if hidden is not None else "TYPE_FP32"
        inputs = [Tensor("hidden", dtype, [-1, width])]
        reads = {"hidden": hidden.name} if hidden is not None else {}
        if settings_p.mode == "mean":
            inputs.append(Tensor("mask", next(o.dtype for o in tokenized.outputs if o.name == mask)
                                 if tokenized and mask else "TYPE_INT64", [-1]))
            if mask:
                reads["mask"] = mask
        return StepPlan(ctx.number, "pool", ctx.name, True, inputs, [Tensor("EMBEDDING", "TYPE_FP32", [width])],
                        settings={"kind": "pool", "hidden": "hidden", "mask": "mask", "output": "EMBEDDING",
                                  "mode": settings_p.mode, "normalize": settings_p.normalize},
                        reads=reads, upstream_unknown=unknown)


class _ClassifyPlanner(StepPlanner):
    kind = "classify"

    def plan(self, ctx: _StepContext) -> StepPlan | None:
        settings_c = ctx.step.classify
        assert settings_c is not None
        previous = next((s for s in reversed(list(ctx.recent.values())) if s.outputs), None)
        source = ctx.recent.get("model")
        unknown = source is not None and source.outputs is None
        logits = None
        for plan in ([source] if source else []) + ([previous] if previous else []):
            logits = next((o for o in plan.outputs or [] if len(o.dims) == 1
                           and datatypes.lookup(o.dtype).is_floating), None)
            if logits:
                break
        if logits is None and not unknown and not (ctx.step.map or {}).get("logits"):
            ctx.problems.add("a classify step reads logits (dims [C]) of an earlier step, and there is none",
                             ctx.number, hint="put the model before it, or map: {logits: <a tensor>}")
            return None
        classes = logits.dims[0] if logits is not None else -1
        top_k = settings_c.top_k if classes < 0 else min(settings_c.top_k, classes)
        label_file = CLASSIFY_LABELS if settings_c.labels else None
        made = [Tensor("PROBABILITIES", "TYPE_FP32", [classes], label_file), Tensor("SCORES", "TYPE_FP32", [top_k]),
                Tensor("CLASSES", "TYPE_INT64", [top_k])]
        return StepPlan(ctx.number, "classify", ctx.name, True,
                        [Tensor("logits", logits.dtype if logits else "TYPE_FP32", [classes])],
                        made + ([Tensor("LABELS", STRING, [top_k])] if settings_c.text_labels else []),
                        settings={"kind": "classify", "input": "logits", "probabilities": "PROBABILITIES",
                                  "scores": "SCORES", "classes": "CLASSES",
                                  "labels": "LABELS" if settings_c.text_labels else None, "top_k": top_k,
                                  "label_file": label_file},
                        reads={"logits": logits.name} if logits is not None else {}, upstream_unknown=unknown)


class _PythonPlanner(StepPlanner):
    kind = "python"

    def plan(self, ctx: _StepContext) -> StepPlan | None:
        step = ctx.step
        assert step.python is not None and step.inputs is not None and step.outputs is not None
        return StepPlan(ctx.number, "python", ctx.name, True, [Tensor(t.name, t.dtype, list(t.dims)) for t in step.inputs],
                        [Tensor(t.name, t.dtype, list(t.dims)) for t in step.outputs],
                        settings={"kind": "python", "callable": step.python, "outputs": [t.name for t in step.outputs]})


#: The planner of each step kind (manifest/pipelines.py's Step.kind).
PLANNERS: dict[str, StepPlanner] = {planner.kind: planner for planner in (
    _ModelPlanner(), _TokenizePlanner(), _ImagePlanner(), _PoolPlanner(), _ClassifyPlanner(), _PythonPlanner())}


def plan_all(loaded: LoadedManifest, outputs_of: Mapping[str, list[OutputSpec]] | None = None) -> list[PipelinePlan]:
    """Every pipeline's plan; every problem of all of them at once, with the names pipelines and their steps claim."""
    problems: list[Problem] = []
    plans = []
    names = {m.name for m in loaded.manifest.models}
    for index, spec in enumerate(loaded.manifest.pipelines or []):
        if spec.name in names:
            problems.append(loaded.problem(f"'{spec.name}' is also a model's name: a pipeline is a Triton model too",
                                           ("pipelines", index, "name"), model=spec.name, field="name",
                                           hint="give the pipeline another name", code="M004"))
        names.add(spec.name)
        try:
            plan = plan_pipeline(loaded, index, outputs_of)
        except ManifestError as err:
            problems.extend(err.problems)
            continue
        for step in plan.steps:
            if step.generated and step.model in names:
                problems.append(loaded.problem(
                    f"the pipeline's {step.kind} step is the model '{step.model}', a name already taken",
                    ("pipelines", index, "steps", step.index), model=spec.name, field=f"steps[{step.index}]",
                    hint="rename the pipeline or the model", code="M004"))
            names.add(step.model)
        plans.append(plan)
    if problems:
        raise ManifestError(problems)
    return plans
