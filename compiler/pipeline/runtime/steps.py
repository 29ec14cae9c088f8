"""What each pipeline step does, in numpy: the one code the served Python steps run (model.py beside this file,
copied with it into each step's version folder) and the build's in-process proof runs.

No torch and nothing of the compiler package: an NVIDIA tritonserver image has numpy and Python; the tokenizer's
and the image decoder's libraries are installed there by the files `deploy` writes.

    step = make({"kind": "pool", "mode": "mean", "normalize": True}, folder)
    answers = step.run([{"hidden": h, "mask": m}, ...])      # one dict of arrays per request, batch dim first
"""

from __future__ import annotations

import importlib
import io
import json
import os
import sys
from typing import Any

import numpy as np

#: The file, in a step's version folder, that holds the step's settings (also in its config's parameters).
SETTINGS = "step.json"


class RequestError(ValueError):
    """The request cannot be answered (not UTF-8, not an image, too long): a 400, and the step goes on serving."""


def _texts(array: np.ndarray, name: str, max_bytes: int | None = None) -> list[str]:
    texts = []
    for item in array.reshape(-1):
        raw = item if isinstance(item, bytes) else str(item).encode("utf-8")
        if max_bytes is not None and len(raw) > max_bytes:
            raise RequestError(f"input '{name}': a text of {len(raw)} bytes is longer than the step's max_bytes "
                               f"({max_bytes})")
        try:
            texts.append(raw.decode("utf-8"))
        except UnicodeDecodeError as err:
            raise RequestError(f"input '{name}' is not UTF-8 text ({err.reason} at byte {err.start})") from None
    return texts


class Tokenize:
    """Text -> the model's id tensors, with the fast tokenizer (tokenizer.json) saved in the step's folder: nothing
    is downloaded, and only the `tokenizers` library is needed (transformers pulls in ssl, which the Python backend's
    embedded interpreter of some releases cannot load)."""

    KEYS = {"input_ids": "ids", "attention_mask": "attention_mask", "token_type_ids": "type_ids"}

    def __init__(self, settings: dict[str, Any], folder: str) -> None:
        from tokenizers import Tokenizer

        self.input = settings["input"]
        self.outputs = settings["outputs"]  # output name -> [tokenizer key, numpy dtype]
        self.max_length = int(settings["max_length"])
        self.truncation = bool(settings["truncation"])
        self.fixed = settings["padding"] == "max_length"
        self.per_request = settings.get("pad") == "request"  # pipelines with an encoder (`fuse`)
        self.multiple = 1 if self.per_request else int(settings.get("pad_to_multiple_of") or 1)
        self.left = settings["padding_side"] == "left"
        self.max_bytes = int(settings.get("max_bytes") or 65536)
        self.fill = {"ids": int(settings["pad_id"]), "attention_mask": 0, "type_ids": 0}
        self.tokenizer = Tokenizer.from_file(os.path.join(folder, settings["tokenizer"], "tokenizer.json"))
        self.tokenizer.no_padding()  # padded here, to the batch's bucket
        self.tokenizer.no_truncation()
        self.counter = self.tokenizer
        if self.truncation:
            self.tokenizer = Tokenizer.from_str(self.tokenizer.to_str())
            self.tokenizer.enable_truncation(self.max_length)

    def length(self, longest: int) -> int:
        """The padded length of a batch whose longest text has `longest` tokens: max_length for fixed padding, else
        `longest` rounded up to the bucket (never past max_length)."""
        if self.fixed:
            return self.max_length
        return max(longest, min(-(-longest // self.multiple) * self.multiple, self.max_length))

    def run(self, requests: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
        """All requests' texts in one call of the tokenizers library; each request gets its rows back, padded to one
        length for the whole execution (so that the model after it can merge them), or, before an encoder, each to
        its own longest text."""
        texts = [_texts(request[self.input], self.input, self.max_bytes) for request in requests]
        flat = [text for group in texts for text in group]
        if not self.truncation:
            for encoding in self.counter.encode_batch(flat):
                if len(encoding.ids) > self.max_length:
                    raise RequestError(f"input '{self.input}': a text of {len(encoding.ids)} tokens is longer than "
                                       f"max_length {self.max_length} (truncation is off)")
        encodings = self.tokenizer.encode_batch(flat)
        if not self.per_request:  # one length for the execution: the model after it merges equal shapes only
            return self._split(texts, self._columns(encodings))
        answers, start = [], 0
        for group in texts:  # each request its own length: an encoder after it merges any lengths (ragged batching)
            answers += self._split([group], self._columns(encodings[start:start + len(group)]))
            start += len(group)
        return answers

    def _columns(self, encodings: list[Any]) -> dict[str, np.ndarray]:
        # at least one column: a text of no tokens (an empty one, where the tokenizer adds no special tokens) gets
        # one padding token under a zero mask, which pools to a zero vector
        length = self.length(max(1, max((len(e.ids) for e in encodings), default=1)))
        columns = {}
        for key, attribute in self.KEYS.items():
            column = np.full((len(encodings), length), self.fill[attribute], dtype=np.int64)
            for row, encoding in enumerate(encodings):
                values = getattr(encoding, attribute)
                if self.left:
                    column[row, length - len(values):] = values
                else:
                    column[row, :len(values)] = values
            columns[key] = column
        return columns

    def _split(self, texts: list[list[str]], columns: dict[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
        answers, start = [], 0
        for group in texts:
            answers.append({name: np.ascontiguousarray(columns[key][start:start + len(group)]).astype(dtype)
                            for name, (key, dtype) in self.outputs.items()})
            start += len(group)
        return answers


class DecodeImage:
    """Encoded image bytes (JPEG, PNG, anything Pillow reads) -> the model's FP32 input: RGB, the shorter side
    resized to `resize` (bilinear), the centre `crop` x `crop`, scaled to [0, 1], normalised, channels first.

    The work is bounded by the output, not by the request: the size is read from the header and an image over
    `max_pixels` is refused before anything is decoded; a JPEG is decoded at the smallest scale (1/2 to 1/8) that
    still covers the resized image (draft mode); and only the crop's region of the source is resized, straight to
    crop x crop (a 10000x1 strip no longer becomes 2,560,000x256 before its crop)."""

    def __init__(self, settings: dict[str, Any], folder: str) -> None:
        self.input = settings["input"]
        self.output = settings["output"]
        self.resize = int(settings["resize"])
        self.crop = int(settings["crop"])
        self.mean = np.asarray(settings["mean"], dtype=np.float32).reshape(3, 1, 1)
        self.std = np.asarray(settings["std"], dtype=np.float32).reshape(3, 1, 1)
        self.dtype = np.dtype(settings.get("dtype", "float32"))
        self.max_pixels = int(settings.get("max_pixels") or 50_000_000)
        from PIL import Image

        Image.MAX_IMAGE_PIXELS = None  # Pillow's own bomb check (an error past 179 MP) gives way to max_pixels, below

    def image(self, blob: bytes) -> np.ndarray:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(io.BytesIO(blob)) as opened:  # reads the header only
                width, height = opened.size
                if width * height > self.max_pixels:
                    raise RequestError(f"input '{self.input}' is a {width}x{height} image ({width * height:,} "
                                       f"pixels), more than the step's max_pixels ({self.max_pixels:,})")
                scale = self.resize / min(width, height)
                if opened.format == "JPEG":  # decode at 1/2..1/8 where that still covers the resized image
                    opened.draft("RGB", (max(1, round(width * scale)), max(1, round(height * scale))))
                    width, height = opened.size
                    scale = self.resize / min(width, height)
                picture = opened.convert("RGB")
        except RequestError:
            raise
        except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as err:
            raise RequestError(f"input '{self.input}' is not an image Pillow can decode ({err})") from None
        side = self.crop / scale  # the crop's side, in source pixels
        left, top = (width - side) / 2, (height - side) / 2
        picture = picture.resize((self.crop, self.crop), Image.Resampling.BILINEAR,
                                 box=(left, top, left + side, top + side))
        pixels = np.asarray(picture, dtype=np.float32).transpose(2, 0, 1) / 255.0
        return np.ascontiguousarray(((pixels - self.mean) / self.std).astype(self.dtype))

    def run(self, requests: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
        answers = []
        for request in requests:
            blobs = [item if isinstance(item, bytes) else bytes(item) for item in request[self.input].reshape(-1)]
            answers.append({self.output: np.stack([self.image(blob) for blob in blobs])})
        return answers


class Pool:
    """Token vectors [n, L, H] and their attention mask [n, L] -> one vector per text [n, H]: the mean of the
    tokens the mask keeps (padding never counts), or the first token's; L2-normalised if asked."""

    def __init__(self, settings: dict[str, Any], folder: str) -> None:
        self.hidden, self.mask, self.output = settings["hidden"], settings["mask"], settings["output"]
        self.mode = settings["mode"]
        self.normalize = bool(settings["normalize"])

    def run(self, requests: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
        answers = []
        for request in requests:
            hidden = request[self.hidden].astype(np.float32)
            if self.mode == "cls":
                pooled = hidden[:, 0]
            else:
                mask = request[self.mask].astype(np.float32)[..., None]
                pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
            if self.normalize:
                pooled = pooled / np.maximum(np.linalg.norm(pooled, axis=-1, keepdims=True), 1e-12)
            answers.append({self.output: np.ascontiguousarray(pooled, dtype=np.float32)})
        return answers


class Classify:
    """Logits [n, C] -> softmax: the probabilities of every class [n, C] (its config gives them the labels, for
    Triton's class_count), and the top K classes' scores [n, K] and indices [n, K] (INT64); their labels [n, K]
    (bytes) only where the step was asked for them (`text_labels`)."""

    def __init__(self, settings: dict[str, Any], folder: str) -> None:
        self.input = settings["input"]
        self.probabilities, self.scores, self.classes = (settings["probabilities"], settings["scores"],
                                                         settings["classes"])
        self.labels_output = settings.get("labels")
        self.top_k = int(settings["top_k"])
        self.names: list[str] | None = None
        if settings.get("label_file"):
            with open(os.path.join(folder, settings["label_file"]), encoding="utf-8") as handle:
                self.names = [line.rstrip("\n") for line in handle]

    def run(self, requests: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
        answers = []
        for request in requests:
            logits = request[self.input].astype(np.float64)
            shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
            probabilities = shifted / shifted.sum(axis=-1, keepdims=True)
            top = np.argsort(-probabilities, axis=-1, kind="stable")[:, : self.top_k]
            answer = {self.probabilities: probabilities.astype(np.float32),
                      self.scores: np.take_along_axis(probabilities, top, axis=-1).astype(np.float32),
                      self.classes: top.astype(np.int64)}
            if self.labels_output:
                names = self.names
                answer[self.labels_output] = np.array(
                    [[(names[i] if names else str(i)).encode("utf-8") for i in row] for row in top], dtype=np.object_)
            answers.append(answer)
        return answers


class UserStep:
    """The user's own `module:callable`, copied into the step's folder: numpy arrays in by input name, a dict of
    numpy arrays out. Each request is passed on its own."""

    def __init__(self, settings: dict[str, Any], folder: str) -> None:
        module_name, _, attr = settings["callable"].partition(":")
        if folder not in sys.path:
            sys.path.insert(0, folder)
        target: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
        self.function = target
        self.outputs = settings["outputs"]

    def run(self, requests: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
        answers = []
        for request in requests:
            result = self.function(**request)
            missing = [name for name in self.outputs if name not in result]
            if missing:
                raise ValueError(f"the step returned {sorted(result)}, without {missing}")
            answers.append({name: np.asarray(result[name]) for name in self.outputs})
        return answers


KINDS = {"tokenize": Tokenize, "image": DecodeImage, "pool": Pool, "classify": Classify, "python": UserStep}


def make(settings: dict[str, Any], folder: str) -> Any:
    """The step of `settings` (its "kind" picks the class), with its files in `folder`."""
    return KINDS[settings["kind"]](settings, folder)


def load(folder: str) -> Any:
    """The step whose settings and files are in `folder` (a step's version folder)."""
    with open(os.path.join(folder, SETTINGS), encoding="utf-8") as handle:
        return make(json.load(handle), folder)
