"""A pipeline run in one process, and the proof that the compiled parts chained give what the eager ones give.

The chain runs each generated step with the very code the served step runs (steps.py, from the folder the build
wrote), and each model step with a runner: the eager model (as the export serves it, export/reference.py), or the
built export (the package or the TorchScript file). The proof feeds both chains inputs it makes itself (texts of
varied length from the tokenizer's vocabulary; images of several sizes, encoded as JPEG and PNG) and the manifest's
own, each alone and all in one batch: the compiled chain must equal the eager one, and a batch must answer each
input as it is answered alone (padding must not leak into the answer).

    chain = Chain(plan, step_folders, runners)          # runners: model name -> ModelRunner
    answers = chain.run({"TEXT": np.array([[b"hello"]], dtype=object)})
"""

from __future__ import annotations

import importlib.util
import io
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from compiler import datatypes
from compiler.errors import ExportError, Problem
from compiler.export.proof import mismatch
from compiler.manifest.schema import ModelSpec
from compiler.manifest.step_settings import EncoderSettings, settings_of
from compiler.manifest.wiring import ENCODER, STRING, PipelinePlan, StepPlan, Tensor

#: How many texts and images the proof makes, besides the manifest's own.
TEXT_LENGTHS = (1, 4, 11, 29)
IMAGE_SIZES = ((96, 64), (64, 96), (57, 57))


def runtime_steps() -> Any:
    """steps.py as the served steps import it (by path: it is a file copied into each step's folder)."""
    name = "triton_compiler_pipeline_steps"
    if name not in sys.modules:
        path = Path(__file__).resolve().parent / "runtime" / "steps.py"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


class ModelRunner:
    """A model step in-process: numpy in by input name, numpy out by output name, through `module` (eager, or the
    built export) bound as the backend binds it."""

    def __init__(self, model: ModelSpec, module: Any, output_names: Sequence[str], binding: Any = None) -> None:
        from compiler.export.reference import EagerReference

        self.reference = EagerReference(model, module, binding)
        self.names = list(output_names)
        self.positions = self.reference.positions(self.names)

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        tensors = {name: datatypes.to_torch(value) for name, value in inputs.items()}
        flat = self.reference.outputs(tensors)
        return {name: datatypes.to_numpy(flat[self.positions[name]]) for name in self.names}


def runs_a_model(step: StepPlan) -> bool:
    """The step runs a model of `models:` (as itself, or inside a fused encoder), not steps.py's code."""
    return not step.generated or step.kind == ENCODER


class Chain:
    def __init__(self, plan: PipelinePlan, folders: dict[str, Path], runners: Mapping[str, Callable[..., Any]]) -> None:
        steps = runtime_steps()
        self.plan = plan
        self.runners: dict[str, Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]] = {}
        self.steps: dict[str, Any] = {}  # the generated steps' own objects, which take several requests at once
        for step in plan.steps:
            if runs_a_model(step):
                self.runners[step.model] = runners[step.model]
            else:
                self.steps[step.model] = steps.load(str(folders[step.model] / "1"))
                self.runners[step.model] = _one(self.steps[step.model])

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.run_merged([inputs])[0]

    def run_merged(self, requests: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
        """Several requests as one execution of each step takes them from Triton's dynamic batcher: a generated step
        and an encoder get them all at once (an encoder ragged), a model each alone."""
        tensors = [dict(inputs) for inputs in requests]
        for step in self.plan.steps:
            asked = [{name: known[source] for name, source in step.input_map.items()} for known in tensors]
            runner = self.runners[step.model]
            if step.model in self.steps:
                answers = self.steps[step.model].run(asked)
            elif hasattr(runner, "merged"):
                answers = runner.merged(asked)
            else:
                answers = [runner(one) for one in asked]
            for known, answer in zip(tensors, answers):
                for name, target in step.output_map.items():
                    known[target] = answer[name]
        return [{tensor.name: known[tensor.name] for tensor in self.plan.outputs} for known in tensors]


def _one(step: Any) -> Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]:
    def run(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(step.run([arrays])[0])

    return run


def eager_runners(plan: PipelinePlan, models: Mapping[str, ModelSpec], directory: Path,
                  allow_paths: Sequence[Path] = (), progress: Callable[[str], None] = lambda _: None
                  ) -> dict[str, Any]:
    """A runner of the eager model for each model step (for an encoder: the eager model, then the pool step's code):
    what the build's proof, verify and bench chain around."""
    from compiler.pipeline.encoder import EagerEncoder
    from compiler.sources import load_source

    runners: dict[str, Any] = {}
    for step in plan.steps:
        if not runs_a_model(step):
            continue
        model = models[step.manifest_model or step.model]
        progress(f"{plan.name}: loading eager {model.name}")
        module = load_source(model, directory, allow_paths)
        if step.kind != ENCODER:
            runners[step.model] = ModelRunner(model, module, [t.name for t in step.outputs or []])
            continue
        settings = settings_of(step, EncoderSettings)
        pool = None
        if settings["mode"]:
            pool = runtime_steps().Pool({"hidden": "hidden", "mask": "mask", "output": step.outputs[0].name,
                                         "mode": settings["mode"], "normalize": settings["normalize"]}, "")
        assert settings["model_outputs"] is not None  # a build plans its pipelines with its models' outputs
        runners[step.model] = EagerEncoder(ModelRunner(model, module, settings["model_outputs"]), step, pool)
    return runners


def compiled_runners(plan: PipelinePlan, models: Mapping[str, ModelSpec], repository: Path,
                     eager: Mapping[str, Any]) -> dict[str, Any]:
    """The built exports in `repository`, run as their backend runs them: a model's file bound as its eager runner
    is, an encoder's scripted wrapper called with ragged inputs."""
    from compiler.export.reference import load_built
    from compiler.pipeline.encoder import EncoderRunner

    runners: dict[str, Any] = {}
    for step in plan.steps:
        if step.kind == ENCODER:
            runners[step.model] = EncoderRunner(load_built(repository / step.model), step)
        elif not step.generated:
            runner = eager[step.model]
            runners[step.model] = ModelRunner(models[step.model], load_built(repository / step.model), runner.names,
                                              runner.reference.binding)
    return runners


def last_model(plan: PipelinePlan, models: Mapping[str, ModelSpec]) -> ModelSpec:
    """The last model the pipeline runs: its tolerance judges the pipeline's answers."""
    return next(models[s.manifest_model or s.model] for s in reversed(plan.steps) if runs_a_model(s))


def step_folders(plan: PipelinePlan, repository: Path) -> dict[str, Path]:
    """The generated steps' folders in `repository`."""
    return {s.model: repository / s.model for s in plan.steps if s.generated and s.kind != ENCODER}


# -- what the proof sends ---------------------------------------------------------------------------------------
def texts(tokenizer_folder: Path, extra: Sequence[str] = (), lengths: Sequence[int] = TEXT_LENGTHS) -> list[str]:
    """Texts of varied length (`lengths`, in words) from the tokenizer's own vocabulary (whole words, no special
    tokens), then `extra`."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_folder), local_files_only=True)
    words = sorted(w for w in tokenizer.get_vocab() if w.isalpha() and w.isascii() and len(w) > 2)
    rng = np.random.default_rng(7)
    made = [" ".join(rng.choice(words, size=length)) for length in lengths] if words else []
    return made + list(extra)


def images(extra: Sequence[Path] = ()) -> list[bytes]:
    """Random RGB pictures of several sizes, each encoded as JPEG and as PNG, then the bytes of the `extra` files."""
    from PIL import Image

    rng = np.random.default_rng(11)
    made = []
    for width, height in IMAGE_SIZES:
        picture = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
        for kind in ("JPEG", "PNG"):
            buffer = io.BytesIO()
            picture.save(buffer, format=kind)
            made.append(buffer.getvalue())
    return made + [Path(p).read_bytes() for p in extra]


def as_request(items: Sequence[str | bytes]) -> np.ndarray:
    """A batch of raw inputs as a TYPE_STRING tensor [n, 1]."""
    return np.array([[item.encode("utf-8") if isinstance(item, str) else item] for item in items], dtype=np.object_)


def raw_inputs(plan: PipelinePlan, repository: Path, base: Path) -> list[str | bytes]:
    """What the proof and verify send to a pipeline: texts for a tokenize step (from the vocabulary of the tokenizer
    its step folder in `repository` holds), images for an image step, and the pipeline's own `example:` (all a
    python step gets)."""
    first = plan.steps[0]
    tokenizer = repository / first.model / "1" / "tokenizer" if first.kind == "tokenize" else None
    example = plan.spec.example
    own_texts = list(example.texts or []) if example else []
    own_images = [base / p for p in (example.images or [])] if example else []
    kind = plan.steps[0].kind
    if kind == "tokenize":
        assert tokenizer is not None
        return list(texts(tokenizer, own_texts))
    if kind == "image":
        return list(images(own_images))
    return [*own_texts, *(path.read_bytes() for path in own_images)]


# -- the comparison ----------------------------------------------------------------------------------------------
def difference(model: ModelSpec, want: dict[str, np.ndarray], got: dict[str, np.ndarray],
               outputs: Sequence[Tensor]) -> str | None:
    """How two answers of a pipeline differ (None: equal): floats within the model's tolerance; the top classes
    (labels, class indices) exactly, except where their scores tie within that tolerance (their order is then
    arbitrary)."""
    scores = next((t.name for t in outputs if t.name.endswith("SCORES")), None) or \
        next((t.name for t in outputs if t.dtype == "TYPE_FP32"), None)
    ranked = {t.name for t in outputs if t.dtype == STRING or (t.name.endswith("CLASSES") and scores is not None
                                                                  and want[t.name].shape == want[scores].shape)}
    for tensor in outputs:
        a, b = want[tensor.name], got[tensor.name]
        if tensor.name in ranked:
            continue
        detail = mismatch(model, [datatypes.to_torch(a)], [datatypes.to_torch(b)])
        if detail:
            return f"{tensor.name}: {detail.removeprefix('output 0: ')}"
    for tensor in outputs:
        if tensor.name not in ranked:
            continue
        a, b = want[tensor.name], got[tensor.name]
        if a.shape != b.shape:
            return f"{tensor.name}: shape {list(a.shape)} against {list(b.shape)}"
        ties = np.zeros(a.shape, dtype=bool)
        if scores is not None and want[scores].shape == a.shape:
            values = want[scores]
            near = np.abs(np.diff(values, axis=-1)) <= 1e-4 + 1e-4 * np.abs(values[..., 1:])
            ties[..., 1:] |= near
            ties[..., :-1] |= near
        differ = (a != b) & ~ties
        if differ.any():
            first = tuple(int(i) for i in np.argwhere(differ)[0])
            return f"{tensor.name}: {a[first]!r} against {b[first]!r} at {list(first)}"
    return None


def prove(plan: PipelinePlan, eager: Chain, compiled: Chain, inputs: list[str | bytes], model: ModelSpec,
          progress: Callable[[str], None]) -> int:
    """Each input alone and all at once through both chains; returns how many inputs were proved."""
    name = plan.inputs[0].name

    def problem(message: str) -> ExportError:
        return ExportError(Problem(message, model=plan.name, field="steps",
                                   hint="the steps' code and the model's export must agree: see the model's own "
                                        "proof, and the step named"))

    alone = []
    for number, item in enumerate(inputs):
        progress(f"prove: input {number} ({_describe(item)}) through the eager and the compiled chain")
        request = {name: as_request([item])}
        want, got = eager.run(request), compiled.run(request)
        detail = difference(model, want, got, plan.outputs)
        if detail:
            raise problem(f"input {number} ({_describe(item)}): the compiled pipeline's answer differs from the eager "
                          f"one: {detail}")
        alone.append(got)
    batch = inputs[: plan.spec.max_batch_size]
    progress(f"prove: {len(batch)} inputs in one batch, against each alone")
    together = compiled.run({name: as_request(batch)})
    for number, single in enumerate(alone[: len(batch)]):
        row = {key: value[number:number + 1] for key, value in together.items()}
        detail = difference(model, single, row, plan.outputs)
        if detail:
            raise problem(f"input {number} ({_describe(inputs[number])}) answered in a batch of {len(batch)} differs "
                          f"from it alone: {detail} (padding leaks into the answer?)")
    if any(step.kind == ENCODER for step in plan.steps):
        # as Triton merges them: requests of one input each, every step given them in one execution, the encoder
        # ragged (each of its own length, flat), and one request of several inputs among them
        requests = [{name: as_request([item])} for item in batch] + [{name: as_request(batch[:2])}]
        progress(f"prove: {len(requests)} requests merged into one execution of each step, against each alone")
        merged = compiled.run_merged(requests)
        for number, answer in enumerate(merged[:-1]):
            detail = difference(model, alone[number], answer, plan.outputs)
            if detail:
                raise problem(f"input {number} ({_describe(inputs[number])}) merged with {len(requests) - 1} other "
                              f"requests differs from it alone: {detail}")
        pair = {key: np.concatenate([a[key] for a in alone[:2]]) for key in merged[-1]}
        detail = difference(model, pair, merged[-1], plan.outputs)
        if detail:
            raise problem(f"a request of {len(batch[:2])} inputs merged with {len(requests) - 1} others differs from "
                          f"its inputs alone: {detail}")
    return len(inputs)


def _describe(item: str | bytes) -> str:
    if isinstance(item, str):
        return f"a text of {len(item.split())} words"
    kind = "PNG" if item[:4] == b"\x89PNG" else "JPEG" if item[:2] == b"\xff\xd8" else "image"
    return f"a {kind} of {len(item)} bytes"


__all__ = ["Chain", "ModelRunner", "Tensor", "as_request", "images", "prove", "raw_inputs", "texts"]
