"""Load models.yaml, keeping YAML positions, and report every problem at once.

Each problem names the file and line, the model and the field, and says how
to fix it (with a did-you-mean for misspelt keys and dtypes).

    loaded = load_manifest(Path("models.yaml"))   # raises ManifestError
    loaded.manifest.models[0].name, loaded.line_of(("models", 0, "inputs"))
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from compiler import datatypes
from compiler.compat.aoti_rules import aoti_violations
from compiler.compat.server_crashes import STRING, STRING_CLASSIFICATION, crashes_of
from compiler.compat.torchscript_rules import torchscript_violations
from compiler.errors import ManifestError, Problem
from compiler.manifest.raw_config import raw_config_problems
from compiler.manifest.schema import SOURCE_KINDS, Manifest
from compiler.releases import (
    MODEL_CONFIG_NAME_SINCE,
    Release,
)

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class LoadedManifest:
    path: Path
    manifest: Manifest
    tree: Any  # the ruamel round-trip tree, for positions

    @property
    def directory(self) -> Path:
        return self.path.parent

    def line_of(self, loc: Loc) -> int | None:
        return _position(self.tree, loc)[0]

    def locate(self, problem: Problem, index: int, section: str = "models") -> Problem:
        """Place a problem of model (or pipeline) `index` from a later stage at the line of its field (else of the
        entry)."""
        if problem.file is not None:
            return problem
        parts: tuple[str | int, ...] = tuple(
            int(part) if part.isdigit() else part
            for part in (problem.field or "").replace("[", ".").replace("]", "").split(".") if part)
        if parts == ("triton_version",):  # a fact about the target release, written once at the top
            line = self.line_of(("triton_version",)) or self.line_of((section, index))
        else:
            line = self.line_of((section, index, *parts)) if parts else self.line_of((section, index))
        return dataclasses.replace(problem, file=self.path, line=line)

    def problem(self, message: str, loc: Loc, **extra: Any) -> Problem:
        line, column = _position(self.tree, loc)
        return Problem(message, file=self.path, line=line, column=column, **extra)


def load_manifest(path: Path) -> LoadedManifest:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError(
            Problem("manifest not found", file=path, hint="create models.yaml, or pass --manifest / MANIFEST=",
                    code="M001")
        ) from None
    except (OSError, UnicodeDecodeError) as err:
        raise ManifestError(Problem(f"cannot read the manifest: {err}", file=path, code="M001")) from err

    yaml = YAML(typ="rt")
    try:
        tree = yaml.load(text)
    except MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark else None
        column = mark.column + 1 if mark else None
        message = " ".join(str(part) for part in (err.context, err.problem) if part)
        raise ManifestError(
            Problem(f"YAML syntax error: {message}", file=path, line=line, column=column,
                    hint="check indentation and quoting on this line and the one above", code="M001")
        ) from None
    except YAMLError as err:
        raise ManifestError(Problem(f"YAML error: {err}", file=path, code="M001")) from None

    if not isinstance(tree, CommentedMap):
        raise ManifestError(
            Problem("the manifest must be a mapping with a `models:` list", file=path, line=1,
                    hint="start from the models.yaml in this repository", code="M001")
        )
    broken = list(_unencodable(tree, ()))
    if broken:
        raise ManifestError([Problem("text that is not valid Unicode (an escaped lone surrogate such as \\udc80)",
                                     file=path, line=_position(tree, loc)[0], model=_model_name(tree, loc),
                                     field=_field_path(loc) or None, hint="write the character itself, or remove it",
                                     code="M001")
                             for loc in broken])
    data = _plain(tree)
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as err:
        problems = [_translate(dict(error), tree, path) for error in err.errors()]
        raise ManifestError(_dedupe(problems)) from None

    loaded = LoadedManifest(path, manifest, tree)
    problems = _release_problems(loaded) + _crash_problems(loaded)
    if manifest.pipelines:
        from compiler.manifest.wiring import plan_all  # the pipelines' wiring, from what the manifest says

        try:
            plan_all(loaded)
        except ManifestError as err:
            problems.extend(err.problems)
    if problems:
        raise ManifestError(problems)
    return loaded


def _unencodable(node: Any, loc: Loc) -> Any:
    """Locations of strings (keys or values) that UTF-8 cannot encode."""
    def bad(text: object) -> bool:
        try:
            str(text).encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False

    if isinstance(node, dict):
        for key, value in node.items():
            if bad(key):
                yield loc
            else:
                yield from _unencodable(value, (*loc, str(key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _unencodable(value, (*loc, index))
    elif isinstance(node, str) and bad(node):
        yield loc


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


# -- positions ---------------------------------------------------------------------------
def _position(tree: Any, loc: Loc) -> tuple[int | None, int | None]:
    """Line and column (1-based) of the deepest node of `loc` that exists."""
    node = tree
    best: tuple[int | None, int | None] = (1, None)
    if hasattr(node, "lc"):
        best = (node.lc.line + 1, node.lc.col + 1)
    for part in loc:
        if isinstance(node, CommentedMap) and isinstance(part, str) and part in node:
            line, col = node.lc.key(part)
            best = (line + 1, col + 1)
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            line, col = node.lc.item(part)
            best = (line + 1, col + 1)
            node = node[part]
        elif isinstance(part, str) and part in SOURCE_KINDS:
            continue  # a union tag in pydantic's loc, not a key
        else:
            break
    return best


def _model_name(tree: Any, loc: Loc) -> str | None:
    if len(loc) >= 2 and loc[0] in ("models", "pipelines") and isinstance(loc[1], int):
        try:
            entry = tree[loc[0]][loc[1]]
            name = entry.get("name") if isinstance(entry, dict) else None
            return str(name) if name is not None else f"#{loc[1] + 1}"
        except (KeyError, IndexError, TypeError):
            return None
    return None


def _field_path(loc: Loc) -> str:
    parts = list(loc[2:] if len(loc) >= 2 and loc[0] in ("models", "pipelines") else loc)
    text = ""
    for part in parts:
        if isinstance(part, str) and part in SOURCE_KINDS and text.endswith("source"):
            continue
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


# -- pydantic errors in plain words -----------------------------------------------------------
def _translate(error: dict[str, Any], tree: Any, path: Path) -> Problem:
    loc: Loc = tuple(error["loc"])
    kind = error["type"]
    message = error["msg"]
    hint = None
    if kind == "extra_forbidden":
        key = str(loc[-1])
        allowed = _allowed_keys(loc[:-1])
        message = f"unknown key '{key}'"
        close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'?" if close else (f"allowed keys: {', '.join(allowed)}" if allowed else None)
    elif kind == "missing":
        message = f"missing required key '{loc[-1]}'"
        loc_for_line = loc[:-1]
        return Problem(message, file=path, line=_position(tree, loc_for_line)[0], model=_model_name(tree, loc),
                       field=_field_path(loc), hint="add it; see the manifest reference, docs/manifest.md", code="M002")
    elif kind == "source_kind":
        hint = "e.g. `source: {torchvision: resnet50}` or `source: {transformers: path/to/folder}`"
    elif kind == "value_error":
        message = message.removeprefix("Value error, ")
        if "datatype" in message:
            hint = "allowed: " + ", ".join(row.config_name for row in datatypes.TABLE)
    elif kind == "literal_error" or kind.endswith("_type") or kind.endswith("_parsing"):
        message = f"{message} (got {error.get('input')!r})"
    line, column = _position(tree, loc)
    return Problem(message, file=path, line=line, column=column, model=_model_name(tree, loc),
                   field=_field_path(loc) or None, hint=hint, code="M002")


def _dedupe(problems: list[Problem]) -> list[Problem]:
    seen: set[tuple[Any, ...]] = set()
    out = []
    for problem in problems:
        key = (problem.line, problem.field, problem.message)
        if key not in seen:
            seen.add(key)
            out.append(problem)
    return out


def _allowed_keys(loc: Loc) -> list[str]:
    """The keys allowed at `loc`, found by walking the schema's annotations.

    pydantic puts the tag of a tagged union (torchvision, python, ...) into
    `loc` right after `source`; that tag picks the member model.
    """
    candidates: list[type[BaseModel]] = [Manifest]
    keyed = False  # the previous field is a mapping (variants): this part is one of its keys
    for part in loc:
        if isinstance(part, int) or keyed:
            keyed = False
            continue
        tagged = [m for m in candidates if isinstance(part, str) and part in SOURCE_KINDS and part in m.model_fields]
        if len(candidates) > 1 and tagged:
            candidates = tagged
            continue
        fields = [m.model_fields[str(part)] for m in candidates if str(part) in m.model_fields]
        if not fields:
            return []
        candidates = _models_in(fields[0].annotation)
        keyed = _is_mapping(fields[0].annotation)
        if not candidates:
            return []
    return sorted(candidates[0].model_fields) if len(candidates) == 1 else []


def _is_mapping(annotation: Any) -> bool:
    if typing.get_origin(annotation) is dict:
        return True
    return any(_is_mapping(arg) for arg in typing.get_args(annotation))


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found.extend(_models_in(arg))
    return found


# -- rules that depend on the target release -------------------------------------------------
def _release_problems(loaded: LoadedManifest) -> list[Problem]:
    manifest = loaded.manifest
    release = manifest.release
    problems: list[Problem] = []
    first_seen: dict[str, int] = {}
    for m_index, model in enumerate(manifest.models):
        if model.name in first_seen:
            problems.append(loaded.problem(
                f"model name '{model.name}' is used twice (first at line {loaded.line_of(('models', first_seen[model.name], 'name'))})",
                ("models", m_index, "name"), model=model.name, field="name",
                hint="model names are folder names in the repository; make them unique", code="M004"))
        first_seen.setdefault(model.name, m_index)
        for key, message, hint in raw_config_problems(model.config):
            problems.append(loaded.problem(message, ("models", m_index, "config", *([key] if key else [])),
                                           model=model.name, field=f"config.{key}" if key else "config", hint=hint,
                                           code="M005"))
        if model.export == "aoti":
            problems.extend(_aoti_problems(loaded, release, model, m_index))
        problems.extend(_torchscript_problems(loaded, release, model, m_index))
        for i_index, io in enumerate(model.inputs):
            row = datatypes.lookup(io.dtype)
            if row.torch_name is None and row.served_by_pytorch(release) and model.export != "aoti":
                problems.append(loaded.problem(
                    f"{io.name}: {io.dtype} inputs (List[str]) cannot be traced from example tensors",
                    ("models", m_index, "inputs", i_index, "dtype"), model=model.name,
                    field=f"inputs[{i_index}].dtype", hint="tokenize outside the model and pass INT64 ids",
                    code="T103"))
        if model.variants and not release.at_least(MODEL_CONFIG_NAME_SINCE):
            problems.append(loaded.problem(
                f"variants need tritonserver --model-config-name, which arrives in {MODEL_CONFIG_NAME_SINCE}; Triton "
                f"{release} would ignore configs/*.pbtxt and always serve config.pbtxt",
                ("models", m_index, "variants"), model=model.name, field="variants",
                hint=f"target {MODEL_CONFIG_NAME_SINCE} or later, or build one manifest per hardware", code="R120"))
    return problems


def _crash_problems(loaded: LoadedManifest) -> list[Problem]:
    """Outputs a request can end the target's tritonserver with (compat/server_crashes.py): TYPE_STRING outputs
    before 25.07, of a model, of a python step, or a classify step's text labels."""
    release = loaded.manifest.release
    if STRING_CLASSIFICATION not in crashes_of(release):
        return []
    found = []
    said = STRING_CLASSIFICATION.said(release)
    for m_index, model in enumerate(loaded.manifest.models):
        for o_index, out in enumerate(model.outputs or []):
            if datatypes.lookup(out.dtype).config_name == STRING:
                found.append(loaded.problem(f"{out.name}: a TYPE_STRING output; {said}",
                                            ("models", m_index, "outputs", o_index, "dtype"), model=model.name,
                                            field=f"outputs[{o_index}].dtype", hint=STRING_CLASSIFICATION.fix,
                                            code="R130"))
    for p_index, pipeline in enumerate(loaded.manifest.pipelines or []):
        for s_index, step in enumerate(pipeline.steps):
            if step.classify is not None and step.classify.text_labels:
                found.append(loaded.problem(f"text_labels: LABELS is a TYPE_STRING output; {said}",
                                            ("pipelines", p_index, "steps", s_index, "classify", "text_labels"),
                                            model=pipeline.name, field=f"steps[{s_index}].classify.text_labels",
                                            hint=STRING_CLASSIFICATION.fix, code="R130"))
            for o_index, tensor in enumerate(step.outputs or []):
                if tensor.dtype == STRING:
                    found.append(loaded.problem(
                        f"{tensor.name}: a TYPE_STRING output of a python step; {said}",
                        ("pipelines", p_index, "steps", s_index, "outputs", o_index, "dtype"), model=pipeline.name,
                        field=f"steps[{s_index}].outputs[{o_index}].dtype",
                        hint="return numbers (indices, scores), or target 25.07 or later", code="R130"))
    return found


def _torchscript_problems(loaded: LoadedManifest, release: Release, model: Any, m_index: int) -> list[Problem]:
    """The release rules of TorchScript exports (compat/torchscript_rules.py), at their manifest lines; for a package
    the datatype rules only, less BF16 and BYTES, of which the AOTI rules say what a package takes."""
    found = torchscript_violations(release, [(io.name, io.dtype) for io in model.inputs],
                                   [(io.name, io.dtype) for io in model.outputs or []])
    if model.export == "aoti":
        tensors = {"inputs": model.inputs, "outputs": model.outputs or []}
        found = [v for v in found if v.part == "dtype"
                 and datatypes.lookup(tensors[v.field][v.index].dtype).api_name not in ("BF16", "BYTES")]
    return [loaded.problem(v.message, ("models", m_index, v.field, v.index or 0, v.part), model=model.name,
                           field=f"{v.field}[{v.index}].{v.part}", hint=v.hint, code=v.code) for v in found]


def _aoti_problems(loaded: LoadedManifest, release: Release, model: Any, m_index: int) -> list[Problem]:
    """The release rules of `export: aoti` (compat/aoti_rules.py), at their manifest lines."""
    def api(dtype: str) -> str:
        return datatypes.lookup(dtype).api_name

    found = aoti_violations(release, model.max_batch_size, [(io.name, api(io.dtype)) for io in model.inputs],
                            [(io.name, api(io.dtype)) for io in model.outputs or []],
                            any(spec.batching_requested and spec.batching_settings.merges
                                for spec in [model, *(model.for_variant(v) for v in model.variants or {})]))
    problems = []
    for v in found:
        loc: Loc = ("models", m_index, v.field) if v.index is None else ("models", m_index, v.field, v.index, v.part)
        field = v.field if v.index is None else f"{v.field}[{v.index}].{v.part}"
        problems.append(loaded.problem(v.message, loc, model=model.name, field=field, hint=v.hint, code=v.code))
    return problems
