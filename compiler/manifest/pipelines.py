"""The `pipelines:` of models.yaml: raw requests in, answers out, compiled to a Triton ensemble.

    pipelines:
      - name: embed
        max_batch_size: 16
        steps:
          - tokenize: {model: bert, max_length: 128}
          - model: bert
          - pool: {mode: mean, normalize: true}

Each step is exactly one kind (tokenize, image, model, pool, classify, python); compiler/pipeline/ wires them and
writes the ensemble with its Python-backend steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from compiler import datatypes

#: ImageNet's channel means and deviations, torchvision's defaults for its classifiers.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _dtype(value: object) -> object:
    if value is None:
        return None
    try:
        return datatypes.lookup(str(value)).config_name
    except datatypes.UnknownDataType as err:
        raise ValueError(str(err)) from None


class TokenizeStep(_Strict):
    model: str = Field(description="the manifest model whose tokenizer this is (its transformers folder, or its "
                       "`tokenizer:`); the outputs are exactly that model's inputs, under their served names")
    max_length: int | None = Field(None, ge=1, description="longest token sequence; default: the tokenizer's own "
                                   "limit, within the bound the model's package takes")
    padding: Literal["longest", "max_length"] = Field(
        "longest", description="longest: a batch is padded to its longest text, rounded up to pad_to_multiple_of; "
        "max_length: always to max_length")
    pad_to_multiple_of: int = Field(
        16, ge=1, description="longest padding rounds a batch's length up to a multiple of this (at most "
        "max_length), so that requests of similar length share a shape and the dynamic batcher can merge them at "
        "the model (it merges only equal shapes); 1 pads to the longest text exactly")
    truncation: bool = Field(True, description="texts longer than max_length are cut (false: refused with a 400)")
    max_bytes: int = Field(65536, ge=1, description="the longest text in bytes (UTF-8) a request may carry; a longer "
                           "one is refused with a 400 naming this key (tokenizing reads the whole text, truncated or "
                           "not: this bounds a request's time)")
    pad_token: str | None = Field(
        None, description="the token that pads a batch (a token of the tokenizer's vocabulary); default: the "
        "tokenizer's own, else its end-of-text token (GPT-2's `<|endoftext|>`: the attention mask keeps padding out "
        "of every answer, which the proof checks, each text alone against a batch)")


def is_image_input(api_dtype: str, dims: Sequence[int]) -> bool:
    """An input an image step (and `infer --image`) can feed: FP32 or FP16 of dims [3, H, W]."""
    return api_dtype in ("FP32", "FP16") and len(dims) == 3 and dims[0] == 3


class ImageStep(_Strict):
    model: str = Field(description="the manifest model that takes the decoded image (one FP32 input, dims [3, H, W])")
    resize: int = Field(256, ge=1, description="the shorter side is resized to this many pixels (bilinear)")
    crop: int = Field(224, ge=1, description="then the centre crop x crop is kept")
    mean: tuple[float, float, float] = Field(IMAGENET_MEAN, description="per-channel mean subtracted from [0, 1] pixels")
    std: tuple[float, float, float] = Field(IMAGENET_STD, description="per-channel deviation divided by")
    max_pixels: int = Field(50_000_000, ge=1, description="the largest image (width x height, read from its header "
                            "before anything is decoded) a request may carry; a larger one is refused with a 400 naming "
                            "this key. The step's work is then bounded by its output: it decodes JPEGs at the "
                            "smallest scale that still covers the crop, and resizes only the crop's region")

    @model_validator(mode="after")
    def _crop_fits(self) -> ImageStep:
        if self.crop > self.resize:
            raise ValueError(f"crop {self.crop} is larger than resize {self.resize}: the crop must fit in the image")
        if any(value <= 0 for value in self.std):
            raise ValueError(f"std {list(self.std)} must be positive")
        return self


class PoolStep(_Strict):
    mode: Literal["mean", "cls"] = Field("mean", description="mean: the mean of the token vectors under the "
                                         "attention mask; cls: the first token's vector")
    normalize: bool = Field(False, description="divide the embedding by its L2 norm")


class ClassifyStep(_Strict):
    labels: str | None = Field(None, description="a text file, one label per line, one line per class (its line "
                               "count must equal the classifier's width): the label_filename of PROBABILITIES, so "
                               "that a client's class_count gets 'score:index:label' from Triton itself")
    top_k: int = Field(5, ge=1, description="how many classes, by score, SCORES and CLASSES answer")
    text_labels: bool = Field(
        False, description="also answer the top classes' labels as text (LABELS, TYPE_STRING); refused for targets "
        "before 25.07, where one class_count request on a TYPE_STRING output ends tritonserver (the embedded 24.10 "
        "server too)")


class StepTensor(_Strict):
    name: str = Field(description="the tensor's name in the step (and the pipeline tensor it makes or reads)")
    dtype: str = Field(description="Triton datatype: TYPE_FP32, FP32, TYPE_STRING (bytes), ...")
    dims: list[int] = Field(description="per-example dims without the batch dim; -1 = variable")

    _dtype = field_validator("dtype", mode="before")(_dtype)  # type: ignore[misc]


STEP_KINDS = ("tokenize", "image", "model", "pool", "classify", "python")


class Step(_Strict):
    tokenize: TokenizeStep | None = Field(None, description="text (TYPE_STRING) in, the model's id tensors out")
    image: ImageStep | None = Field(None, description="encoded image bytes in, the model's normalised tensor out")
    model: str | None = Field(None, description="a model of `models:`")
    pool: PoolStep | None = Field(None, description="token vectors and the attention mask in, one vector out")
    classify: ClassifyStep | None = Field(None, description="logits in: PROBABILITIES (every class, labelled), the "
                                          "top classes' SCORES and CLASSES (indices), and LABELS where asked")
    python: str | None = Field(None, description="module:callable beside the manifest: numpy arrays in (by input "
                               "name), a dict of numpy arrays out; trusted code, copied into the step's folder")
    inputs: list[StepTensor] | None = Field(None, description="python steps: what the callable takes")
    outputs: list[StepTensor] | None = Field(None, description="python steps: what it returns")
    map: dict[str, str] | None = Field(None, description="this step's input -> the pipeline tensor it reads, where "
                                       "the names differ (the tensors of earlier steps, by their names)")

    @model_validator(mode="after")
    def _exactly_one(self) -> Step:
        given = [kind for kind in STEP_KINDS if getattr(self, kind) is not None]
        if len(given) != 1:
            raise ValueError(f"a step is exactly one of {', '.join(STEP_KINDS)}; this one has "
                             f"{', '.join(given) or 'none'}")
        if (self.inputs is not None or self.outputs is not None) and self.python is None:
            raise ValueError("inputs and outputs are declared for python steps only (the others derive theirs)")
        if self.python is not None:
            module, sep, attr = self.python.partition(":")
            if not sep or not module or not attr:
                raise ValueError(f"'{self.python}' is not module:callable")
            if not self.inputs or not self.outputs:
                raise ValueError("a python step declares its inputs and outputs (name, dtype, dims)")
        return self

    @property
    def kind(self) -> str:
        return next(kind for kind in STEP_KINDS if getattr(self, kind) is not None)


class PipelineTensor(_Strict):
    name: str = Field(description="the name clients use")
    dtype: str | None = Field(None, description="checked against the derived one when given")
    dims: list[int] | None = Field(None, description="checked against the derived ones when given")
    labels: str | None = Field(None, description="an output's label file (Triton's classification extension)")

    _dtype = field_validator("dtype", mode="before")(_dtype)  # type: ignore[misc]


class PipelineExample(_Strict):
    texts: list[str] | None = Field(None, description="texts the proof and verify send besides their own")
    images: list[str] | None = Field(None, description="image files (beside the manifest) they send besides theirs")


class PipelineSpec(_Strict):
    name: str = Field(description="the ensemble's name (a Triton model name)")
    max_batch_size: int = Field(0, ge=0, description="the ensemble's; every step takes at least as many")
    inputs: list[PipelineTensor] | None = Field(None, description="names for the ensemble's inputs, in order; "
                                                "default: derived (TEXT, IMAGE, or the first model's inputs)")
    outputs: list[PipelineTensor] | None = Field(None, description="names for its outputs, in order; default: "
                                                 "derived (EMBEDDING; PROBABILITIES, SCORES and CLASSES; the last model's outputs)")
    steps: list[Step] = Field(min_length=1, description="run in order; each step reads what earlier steps made, by "
                              "name (map: renames)")
    example: PipelineExample | None = Field(None, description="your own inputs, proved and verified besides the "
                                            "generated ones (texts of varied length, JPEG and PNG images)")
    @model_validator(mode="after")
    def _something_to_send(self) -> PipelineSpec:
        if self.steps and self.steps[0].python is not None and not (self.example and (self.example.texts
                                                                                        or self.example.images)):
            raise ValueError("a pipeline that starts with a python step needs `example: {texts: [...]}` (or images): "
                             "the proof and verify cannot guess what your step takes")
        return self

    fuse: bool | None = Field(
        None, description="a tokenize step and the TorchScript model after it (with the pool step after that) become one "
        "served model, `<pipeline>_encoder`: the model's package wrapped so that it takes each request's ids "
        "unpadded (Triton's ragged batching: allow_ragged_batch, and a BATCH_ITEM_SHAPE batch input with each text's "
        "length), pads them inside the graph, and pools and normalises there too. Requests of any length then merge "
        "into one execution, and the pipeline has one Python hop. Default: fused wherever the steps allow it; "
        "true: fused or a build error that says why not; false: the steps as written")
    warmup: bool | None = Field(
        None, description="warm every generated step before READY (model_warmup at batch 1 and max_batch_size: a "
        "short text or a small PNG for the first step, zeros for the others); the models warm with their own "
        "`warmup:`")
