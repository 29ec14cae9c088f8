"""The settings of each kind of pipeline step: what its planner (wiring.py) decides, what the build writes into the
step's step.json, and what the step reads there at run time (pipeline/runtime/steps.py, which cannot import this: a
test ties its reads to these declarations).

    plan.steps[0].settings["kind"]             # "tokenize": the union narrows on it
    settings_of(step, TokenizeSettings)        # the step's settings as that kind's, or TypeError
"""

from typing import TYPE_CHECKING, Literal, TypeVar, cast

from typing_extensions import NotRequired, TypedDict  # typing's: NotRequired from 3.11 (the package takes 3.10),

# and pydantic validates only typing_extensions' TypedDict before 3.12 (the test of each planner's settings does).
# No `from __future__ import annotations` here: a TypedDict reads NotRequired from its annotations' objects

if TYPE_CHECKING:
    from compiler.manifest.wiring import StepPlan


class ModelSettings(TypedDict):
    """A model of `models:`: Triton runs it; nothing is written for it."""

    kind: Literal["model"]


class TokenizeSettings(TypedDict):
    kind: Literal["tokenize"]
    input: str  # the raw text tensor
    keys: dict[str, str]  # served output -> the tokenizer's key (input_ids, attention_mask, token_type_ids)
    padding: Literal["longest", "max_length"]
    pad_to_multiple_of: int
    truncation: bool
    max_length: int | None  # the step's own; the build writes the one it settles on (TokenizerFiles)
    max_bytes: int
    #: "request": each request padded to its own longest text (an encoder after it merges them; `fuse`)
    pad: NotRequired[Literal["request"]]


class TokenizerFiles(TypedDict):
    """What the build adds to a tokenize step's step.json from the tokenizer it saved (pipeline/writer.py)."""

    tokenizer: str  # its folder, beside step.json
    max_length: int  # the longest sequence: the step's, the tokenizer's or the model's bound, the least of them
    pad_id: int
    pad_token: str
    padding_side: str
    outputs: dict[str, list[str]]  # served output -> [tokenizer key, numpy dtype]


class ImageSettings(TypedDict):
    kind: Literal["image"]
    input: str
    output: str
    resize: int
    crop: int
    mean: list[float]
    std: list[float]
    dtype: str  # numpy's name of the model input's dtype
    max_pixels: int


class PoolSettings(TypedDict):
    kind: Literal["pool"]
    hidden: str
    mask: str
    output: str
    mode: Literal["mean", "cls"]
    normalize: bool


class ClassifySettings(TypedDict):
    kind: Literal["classify"]
    input: str
    probabilities: str
    scores: str
    classes: str
    labels: str | None  # the LABELS output, where asked (text_labels)
    top_k: int
    label_file: str | None  # in the version folder


class PythonSettings(TypedDict):
    kind: Literal["python"]
    callable: str  # module:callable, copied beside step.json
    outputs: list[str]


class EncoderSettings(TypedDict):
    """A tokenize step's model (and pool step) made one ragged TorchScript step (`fuse`; pipeline/encoder.py)."""

    kind: Literal["encoder"]
    model: str  # the model of `models:` it wraps
    inputs: list[str]  # the model's input names, forward()'s too
    lengths: str  # the BATCH_ITEM_SHAPE batch input's name
    outputs: list[str]  # the model's outputs it returns (no pool), or the pool step's
    hidden: str | None  # the model output pooled, where a pool step was fused
    mask: str | None  # the input mean pooling masks by
    mode: Literal["mean", "cls"] | None
    normalize: bool
    keys: dict[str, str]  # model input -> the tokenizer key that feeds it
    model_outputs: list[str] | None  # the model's own outputs, as built (the eager runner's)


StepSettings = (ModelSettings | TokenizeSettings | ImageSettings | PoolSettings | ClassifySettings | PythonSettings
                | EncoderSettings)

#: Each kind's settings class, by the kind StepPlan.kind names.
OF_KIND: dict[str, type] = {"model": ModelSettings, "tokenize": TokenizeSettings, "image": ImageSettings,
                            "pool": PoolSettings, "classify": ClassifySettings, "python": PythonSettings,
                            "encoder": EncoderSettings}

S = TypeVar("S")


def model_settings() -> StepSettings:
    """A model step's settings (StepPlan's default)."""
    return {"kind": "model"}


def settings_of(step: "StepPlan", kind: type[S]) -> S:
    """`step`'s settings as `kind` (one of OF_KIND's classes); TypeError where the step is of another kind."""
    if OF_KIND.get(step.settings["kind"]) is not kind:
        raise TypeError(f"step {step.index} ({step.model}) is a {step.settings['kind']} step, not {kind.__name__}")
    return cast(S, step.settings)
