"""Write a planned pipeline into a repository: its Python-backend steps (config, runtime, settings and the files each
needs: the tokenizer, the labels, the user's modules) and the ensemble that chains them with the models.

    names = write_pipeline(plan, loaded, staging, records, allow_paths)   # the model folders written
"""

from __future__ import annotations

import ast
import json
import shutil
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from compiler import datatypes
from compiler.errors import ExportError, Problem
from compiler.manifest import LoadedManifest
from compiler.manifest.step_settings import PythonSettings, TokenizerFiles, TokenizeSettings, settings_of
from compiler.manifest.wiring import CLASSIFY_LABELS, ENCODER, PipelinePlan, StepPlan
from compiler.repository import layout
from compiler.triton_config import to_text
from compiler.triton_config.builder import ensemble_config, step_config, warmups

RUNTIME = Path(__file__).resolve().parent / "runtime"
RUNTIME_FILES = ("model.py", "steps.py")
#: A text and an image the warmup of a tokenize or image step sends (files in <step>/warmup/).
WARMUP_TEXT = "Triton warms this step up before it is ready."


def _problem(plan: PipelinePlan, step: StepPlan, message: str, key: str | None = None,
             hint: str | None = None) -> Problem:
    return Problem(message, model=plan.name, field=f"steps[{step.index}]" + (f".{key}" if key else ""), hint=hint)


def write_pipeline(plan: PipelinePlan, loaded: LoadedManifest, repository: Path, records: dict[str, dict[str, Any]],
                   allow_paths: Sequence[Path] = ()) -> list[str]:
    """Every generated step and the ensemble, into `repository`; `records` are the build records of the models
    the pipeline runs (their guards bound the tokenizer's max_length). Returns the folders written."""
    written = []
    for step in plan.steps:
        if step.kind == ENCODER:
            from compiler.pipeline.encoder import write_encoder

            tokenizer = next(s for s in plan.steps if s.kind == "tokenize" and s.index < step.index)
            said = json.loads((repository / tokenizer.model / "1" / "step.json").read_text())
            write_encoder(plan, step, repository, int(said["pad_id"] or 0), said["padding_side"] == "left")
            written.append(step.model)
        elif step.generated:
            _write_step(plan, step, loaded, repository / step.model, records, allow_paths)
            written.append(step.model)
    folder = repository / plan.name
    (folder / "1").mkdir(parents=True)  # an ensemble has a version folder and no model file
    for tensor in plan.outputs:  # the pipeline's outputs are its last step's: a labelled one's file goes beside them
        if tensor.labels and plan.steps[-1].generated:
            shutil.copyfile(repository / plan.steps[-1].model / tensor.labels, folder / tensor.labels)
    config = ensemble_config(plan.name, plan.spec.max_batch_size, plan.inputs, plan.outputs,
                             [(s.model, s.input_map, s.output_map) for s in plan.steps])
    layout.config_file(folder).write_text(to_text(config))
    written.append(plan.name)
    return written


def _write_step(plan: PipelinePlan, step: StepPlan, loaded: LoadedManifest, folder: Path,
                records: dict[str, dict[str, Any]], allow_paths: Sequence[Path]) -> None:
    version = folder / "1"
    version.mkdir(parents=True)
    for name in RUNTIME_FILES:
        shutil.copyfile(RUNTIME / name, version / name)
    settings: dict[str, Any] = dict(step.settings)  # and, for a tokenizer, what its files say (TokenizerFiles)
    files: dict[str, str] = {}
    if step.kind == "tokenize":
        settings.update(_tokenizer(plan, step, loaded, version, records, allow_paths))
        files = {"TEXT": "TEXT"}
        _warmup_file(folder / layout.WARMUP_DIR / "TEXT", WARMUP_TEXT.encode())
    elif step.kind == "image":
        files = {"IMAGE": "IMAGE"}
        _warmup_file(folder / layout.WARMUP_DIR / "IMAGE", _warmup_image())
    elif step.kind == "classify" and settings.get("label_file"):
        _labels(plan, step, loaded, version, allow_paths)
    elif step.kind == "python":
        _user_modules(plan, step, loaded, version)
    (version / "step.json").write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n")
    warmup = plan.spec.warmup
    samples = []
    if warmup:
        shaped = [_Shaped(t.name, t.dtype, [1 if d == -1 else d for d in t.dims]) for t in step.inputs]
        samples = warmups(shaped, plan.spec.max_batch_size, files)
    config = step_config(step.model, plan.spec.max_batch_size, step.inputs, step.outputs,
                         {"pipeline": plan.name, "step": step.kind}, samples)
    layout.config_file(folder).write_text(to_text(config))
    if not samples:
        shutil.rmtree(folder / layout.WARMUP_DIR, ignore_errors=True)


class _Shaped:
    def __init__(self, name: str, dtype: str, shape: list[int]) -> None:
        self.name, self.dtype, self.shape = name, dtype, shape


def _warmup_file(path: Path, element: bytes) -> None:
    """One TYPE_STRING element as Triton's warmup reads it: a 4-byte little-endian length, then the bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<I", len(element)) + element)


def _warmup_image() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 30, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def tokenizer_folder(loaded: LoadedManifest, model_name: str, allow_paths: Sequence[Path] = ()) -> Path | str:
    """Where the tokenizer of manifest model `model_name` lives: its `tokenizer:`, else its transformers folder (a
    hub id where it names none on disk)."""
    from compiler.sources.paths import PathNotFound, resolve_path

    model = next(m for m in loaded.manifest.models if m.name == model_name)
    source = model.source
    location = str(getattr(source, "tokenizer", None) or getattr(source, "transformers", ""))
    try:
        return resolve_path(location, loaded.directory, allow_paths)
    except (PathNotFound, ValueError):
        return str(location)


def model_bound(record: dict[str, Any], input_name: str) -> int | None:
    """The largest sequence the model's export takes for `input_name` (its guards' upper bound on dim 0)."""
    for item in (record.get("guards") or {}).get("inputs") or []:
        if item.get("name") == input_name:
            highs = [high for _dim, _low, high, what in item.get("sizes") or [] if what == "dim 0" and high]
            return min(highs) if highs else None
    return None


def _tokenizer(plan: PipelinePlan, step: StepPlan, loaded: LoadedManifest, version: Path,
               records: dict[str, dict[str, Any]], allow_paths: Sequence[Path]) -> TokenizerFiles:
    """Save the model's tokenizer into the step (nothing is downloaded when serving); its max_length and outputs."""
    from transformers import AutoTokenizer

    keys = settings_of(step, TokenizeSettings)["keys"]

    model = str(step.manifest_model)
    location = tokenizer_folder(loaded, model, allow_paths)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(location), local_files_only=isinstance(location, Path))
    except Exception as err:
        raise ExportError(_problem(plan, step, f"cannot load the tokenizer of '{model}' from {location}: {err}",
                                   "tokenize", "give the model a `tokenizer:` folder (tokenizer.json or vocab files)")) \
            from None
    if not getattr(tokenizer, "is_fast", False):
        raise ExportError(_problem(plan, step, f"the tokenizer of '{model}' has no fast form (tokenizer.json), which "
                                   "the served step runs with the tokenizers library", "tokenize",
                                   "save it with a fast tokenizer (AutoTokenizer(..., use_fast=True).save_pretrained)"))
    tokenizer.save_pretrained(str(version / "tokenizer"))
    # The step reads tokenizer.json only; its config and special tokens stay, so that the folder loads again as the
    # tokenizer it was (its input names, its pad token): what `compiler import` builds the pipeline from.
    for extra in (version / "tokenizer").iterdir():
        if extra.name not in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
            extra.unlink()
    probe = tokenizer(["a"], return_tensors="np")
    missing = [key for key in keys.values() if key not in probe]
    if missing:
        raise ExportError(_problem(plan, step, f"the tokenizer of '{model}' gives {sorted(probe)}, not {missing}",
                                   "tokenize", "feed those inputs from another step (map:), or remove them"))
    own = tokenizer.model_max_length if isinstance(tokenizer.model_max_length, int) and \
        tokenizer.model_max_length < 10**6 else None
    bounds = [b for b in (model_bound(records.get(model, {}), name) for name in keys) if b]
    declared = settings_of(step, TokenizeSettings)["max_length"]
    limits = [value for value in (declared, own, *bounds) if value]
    if not limits:
        raise ExportError(_problem(plan, step, f"the tokenizer of '{model}' states no longest sequence, and neither "
                                   "does the step", "tokenize", "set max_length on the tokenize step"))
    if declared and bounds and declared > min(bounds):
        raise ExportError(_problem(plan, step, f"max_length {declared} is longer than model '{model}' takes "
                                   f"({min(bounds)})", "tokenize.max_length", f"set max_length: {min(bounds)} or less"))
    spec = plan.spec.steps[step.index].tokenize
    try:
        pad_token, pad_id = pad_token_of(tokenizer, spec.pad_token if spec else None)
    except ValueError as err:
        raise ExportError(_problem(plan, step, f"the tokenizer of '{model}': {err}", "tokenize.pad_token",
                                   "set tokenize.pad_token to a token of its vocabulary (the end-of-text token is "
                                   "the usual choice)")) from None
    return {"tokenizer": "tokenizer", "max_length": min(limits), "pad_id": pad_id, "pad_token": pad_token,
            "padding_side": tokenizer.padding_side,
            "outputs": {name: [key, _numpy_name(next(t.dtype for t in step.outputs if t.name == name))]
                        for name, key in keys.items()}}


def _numpy_name(dtype: str) -> str:
    name = datatypes.lookup(dtype).numpy_name
    assert name is not None, dtype  # a tokenizer's outputs are integers (the planner takes the model's id inputs)
    return name


def pad_token_of(tokenizer: Any, declared: str | None) -> tuple[str, int]:
    """The token (and its id) that pads a batch: `declared` (tokenize.pad_token), else the tokenizer's own, else its
    end-of-text token; ValueError where there is none, or `declared` is not in the vocabulary."""
    if declared is not None:
        known = tokenizer.get_vocab()
        if declared not in known:
            raise ValueError(f"pad_token {declared!r} is not a token of its vocabulary")
        return declared, int(known[declared])
    for token, number in ((tokenizer.pad_token, tokenizer.pad_token_id), (tokenizer.eos_token, tokenizer.eos_token_id)):
        if token is not None and number is not None:
            return str(token), int(number)
    raise ValueError("it has no padding token and no end-of-text token, and a batch of texts is padded to one length")


def _labels(plan: PipelinePlan, step: StepPlan, loaded: LoadedManifest, version: Path,
            allow_paths: Sequence[Path]) -> None:
    from compiler.sources.paths import PathNotFound, resolve_path

    spec = plan.spec.steps[step.index].classify
    assert spec is not None and spec.labels
    try:
        lines = resolve_path(spec.labels, loaded.directory, allow_paths).read_text(encoding="utf-8").splitlines()
    except (PathNotFound, OSError, UnicodeDecodeError) as err:
        raise ExportError(_problem(plan, step, f"cannot read the labels file: {err}", "classify.labels")) from None
    classes = step.inputs[0].dims[0]
    if classes != len(lines):
        raise ExportError(_problem(plan, step, f"{spec.labels} has {len(lines)} lines, the classifier gives {classes} "
                                   "classes", "classify.labels", f"one label per line, {classes} lines in class order"))
    text = "\n".join(lines) + "\n"
    (version / CLASSIFY_LABELS).write_text(text, encoding="utf-8")  # the step reads it
    (version.parent / CLASSIFY_LABELS).write_text(text, encoding="utf-8")  # Triton's label_filename, beside the config


def user_modules(module_name: str, base: Path) -> list[Path]:
    """The module file of a python step and the modules beside the manifest it imports, transitively."""
    found: list[Path] = []
    pending = [module_name.split(".")[0]]
    while pending:
        name = pending.pop()
        path = base / f"{name}.py"
        if not path.is_file() or path in found:
            continue
        found.append(path)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                pending += [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                pending.append(node.module.split(".")[0])
    return found


def _user_modules(plan: PipelinePlan, step: StepPlan, loaded: LoadedManifest, version: Path) -> None:
    module = settings_of(step, PythonSettings)["callable"].partition(":")[0]
    files = user_modules(module, loaded.directory)
    if not files:
        raise ExportError(_problem(plan, step, f"no module '{module}' beside the manifest ({loaded.directory})",
                                   "python", "put the step's module beside models.yaml"))
    for path in files:
        shutil.copyfile(path, version / path.name)
