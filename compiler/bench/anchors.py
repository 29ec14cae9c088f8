"""The anchors of a text pipeline in `make bench`: what a user would run instead of the served pipeline, measured in
the same rounds on the same texts. sentence-transformers `encode()` runs the model's own folder in a process of its
own, in a cached venv that is never the project's: its pinned packages (PINS, the one place they are written) in
the venv itself, torch and numpy seen from the project's venv through a .pth file (one torch on disk, the one the
pipeline's model was compiled and measured with).

    cell = SentenceTransformersCell("sentence-transformers encode, batch 16", folder, texts, 16, 128, seconds)
    cell.run(warmup=1, tick=tick)    # one window in its process; cell.measurement grows per round
    cell.vectors                     # its embeddings of the first texts, for the report's agreement column
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from compiler.bench.load import Measurement
from compiler.cache import cached_venv, venv_folder

#: The anchor's packages, pinned: sentence-transformers 3.4.1 with the transformers, tokenizers and hub it was
#: released against (infinity-emb 0.0.78 pulls the same sentence-transformers and transformers 4.57).
PINS = ("sentence-transformers==3.4.1", "transformers==4.57.1", "tokenizers==0.22.2", "huggingface-hub==0.36.2")
#: How many texts the anchor answers for the agreement check.
AGREEMENT_TEXTS = 8

#: Run in the anchor's venv: load the folder, warm up, then call encode() over every text (its own length-sorted
#: batches of `batch`) until `seconds` have passed; one latency per call. Prints one JSON line.
SCRIPT = r"""
import json, sys, time, warnings
args = json.loads(sys.stdin.read())
import torch
from sentence_transformers import SentenceTransformer
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # "No sentence-transformers model found": a transformers folder, mean pooling
    model = SentenceTransformer(args["folder"], device="cpu")
model.max_seq_length = args["max_length"]
texts = args["texts"]
def call(chunk):
    return model.encode(chunk, batch_size=args["batch"], normalize_embeddings=True, convert_to_numpy=True,
                        show_progress_bar=False)
vectors = call(texts[:args["agreement"]])
for _ in range(args["warmup"]):
    call(texts[:args["batch"]])
latencies, began = [], time.perf_counter()
while not latencies or time.perf_counter() - began < args["seconds"]:
    start = time.perf_counter()
    call(texts)
    latencies.append((time.perf_counter() - start) * 1000)
print(json.dumps({"latencies_ms": latencies, "seconds": time.perf_counter() - began,
                  "vectors": vectors.tolist(), "torch": torch.__version__}))
"""


def anchor_python(progress: Any = lambda _: None) -> Path:
    """The anchors' venv (made once, keyed on PINS and the project's torch): its python."""
    import torch

    key = hashlib.sha256("\n".join([*PINS, torch.__version__, sys.version]).encode()).hexdigest()[:16]
    return cached_venv(venv_folder(f"anchors-{key}"), PINS,
                       "the bench anchors' venv", progress, share=Path(sysconfig.get_paths()["purelib"]))


@dataclass
class SentenceTransformersCell:
    """sentence-transformers encode() over all `texts` per call, in a process of its own per round."""

    label: str
    folder: Path
    texts: list[str]
    batch: int
    max_length: int
    seconds: float
    python: Path | None = None
    measurement: Measurement | None = None
    vectors: np.ndarray | None = None
    error: str = ""

    def run(self, warmup: int, tick: Any) -> None:
        if self.error:
            return
        try:
            self.python = self.python or anchor_python()
        except Exception as err:  # an anchor that cannot install must not lose the hour measured
            self.error = f"not installed: {str(err).splitlines()[0][:200]}"
            return
        args = {"folder": str(self.folder), "texts": self.texts, "batch": self.batch, "max_length": self.max_length,
                "seconds": self.seconds, "warmup": warmup, "agreement": AGREEMENT_TEXTS}
        done = subprocess.run([str(self.python), "-c", SCRIPT], input=json.dumps(args), capture_output=True,
                              text=True, timeout=600 + 10 * self.seconds)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()
            self.error = f"exited {done.returncode}: {tail[-1][:200] if tail else ''}"
            return
        result = json.loads(done.stdout.strip().splitlines()[-1])
        window = Measurement(self.label, 1, len(self.texts), result["seconds"], result["latencies_ms"])
        if self.measurement is None:
            self.measurement = window
        else:
            self.measurement.absorb(window)
        self.vectors = np.asarray(result["vectors"], dtype=np.float32)
        tick()
