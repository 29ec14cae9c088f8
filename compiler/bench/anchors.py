"""The anchors of a text pipeline in `make bench`: what a user would run instead of the served pipeline, measured in
the same rounds on the same texts, from a cached venv that is never the project's: their pinned packages (PINS, the
one place they are written) in the venv itself, torch and numpy seen from the project's venv through a .pth file
(one torch on disk, the one the pipeline's model was compiled and measured with).

- the library in the client's own process, in a process of its own: for an embedding pipeline sentence-transformers
  `encode()` of the model's own folder; for a classifier (TASK_CLASSIFY) transformers' text-classification
  pipeline of the classifier's folder, every class's probability;
- infinity-emb serves the same folder (its torch engine, the pipeline's batch; /embeddings or /classify) and is
  driven over HTTP by the bench's closed-loop client, one text per request at the served rows' concurrency (the
  embedding server a user would deploy instead).

    cell = LibraryCell("sentence-transformers encode, batch 16", folder, texts, 16, 128, seconds)
    cell = LibraryCell("transformers text-classification, batch 16", folder, texts, 16, 128, seconds,
                       task=TASK_CLASSIFY)
    cell.run(warmup=1, tick=tick)    # one window in its process; cell.measurement grows per round
    cell.vectors                     # its embeddings of the first texts, for the report's agreement column
    with InfinityCell("infinity-emb http c16", folder, texts, 16, 128, 16, seconds) as served:
        served.run(warmup=1, tick=tick)
"""

from __future__ import annotations

import hashlib
import http.client
import itertools
import json
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from compiler.bench.load import Measurement, closed_loop
from compiler.cache import cached_venv, venv_folder

#: The anchor's packages, pinned: sentence-transformers 3.4.1 with the transformers, tokenizers and hub it was
#: released against (infinity-emb 0.0.78 pulls the same sentence-transformers and transformers 4.57).
PINS = ("sentence-transformers==3.4.1", "transformers==4.57.1", "tokenizers==0.22.2", "huggingface-hub==0.36.2",
        "infinity-emb[server,torch]==0.0.78")
#: How long infinity-emb may take to answer its /health once started (it loads and warms the model).
INFINITY_START_S = 300
#: How many texts the anchor answers for the agreement check.
AGREEMENT_TEXTS = 8

#: What a text pipeline ends in: an embedding (its anchors: sentence-transformers, infinity-emb's /embeddings) or a
#: classifier's probabilities (transformers' text-classification pipeline, infinity-emb's /classify).
TASK_EMBED = "embed"
TASK_CLASSIFY = "classify"

#: Run in the anchor's venv: load the folder, warm up, then call the library over every text (batches of `batch`)
#: until `seconds` have passed; one latency per call. Prints one JSON line.
SCRIPT = r"""
import json, sys, time, warnings
args = json.loads(sys.stdin.read())
import numpy as np
import torch
texts = args["texts"]
if args["task"] == "embed":
    from sentence_transformers import SentenceTransformer
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "No sentence-transformers model found": a transformers folder, mean pooling
        model = SentenceTransformer(args["folder"], device="cpu")
    model.max_seq_length = args["max_length"]
    def call(chunk):  # sorted by length into batches, as encode() does
        return model.encode(chunk, batch_size=args["batch"], normalize_embeddings=True, convert_to_numpy=True,
                            show_progress_bar=False)
else:
    from transformers import pipeline
    classifier = pipeline("text-classification", model=args["folder"], device="cpu", top_k=None)
    order = classifier.model.config.label2id
    def call(chunk):  # every class's probability (softmax), in the classifier's class order
        answers = classifier(chunk, batch_size=args["batch"], truncation=True, max_length=args["max_length"])
        out = np.zeros((len(chunk), len(order)), dtype=np.float32)
        for row, scores in enumerate(answers):
            for item in scores:
                out[row, order[item["label"]]] = item["score"]
        return out
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
class LibraryCell:
    """The library over all `texts` per call, in a process of its own per round: sentence-transformers encode(), or
    for TASK_CLASSIFY transformers' text-classification pipeline."""

    label: str
    folder: Path
    texts: list[str]
    batch: int
    max_length: int
    seconds: float
    task: str = TASK_EMBED
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
                "seconds": self.seconds, "warmup": warmup, "agreement": AGREEMENT_TEXTS, "task": self.task}
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


@dataclass
class InfinityCell:
    """infinity-emb serving `folder` (torch engine, batches of up to `batch`), started once for every round and
    stopped by `close()` (or the with block); each round one closed-loop window of `concurrency` client threads,
    one text per request, over HTTP with keep-alive, the texts in turn."""

    label: str
    folder: Path
    texts: list[str]
    batch: int
    max_length: int
    concurrency: int
    seconds: float
    task: str = TASK_EMBED
    measurement: Measurement | None = None
    vectors: np.ndarray | None = None
    error: str = ""
    process: subprocess.Popen[str] | None = None
    port: int = 0
    log: Path | None = None
    _turns: itertools.count[int] = field(default_factory=itertools.count)
    _classes: dict[str, int] = field(default_factory=dict)

    NAME = "anchor"  # the served model name the requests give

    def __enter__(self) -> InfinityCell:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, warmup: int, tick: Any) -> None:
        if self.error:
            return
        try:
            self._start()
            if self.vectors is None:
                self.vectors = np.asarray(self._post(self._connection(), self.texts[:AGREEMENT_TEXTS]),
                                          dtype=np.float32)
            window = closed_loop(self.label, self._caller, self.concurrency, self.seconds, warmup=warmup)
        except Exception as err:  # an anchor that cannot start or answer must not lose the hour measured
            self.error = f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"
            self.close()
            return
        if window.errors:
            self.error = f"{window.errors} requests refused in a window"
        if self.measurement is None:
            self.measurement = window
        else:
            self.measurement.absorb(window)
        tick()

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def _start(self) -> None:
        if self.process is not None and self.process.poll() is None:
            return
        python = anchor_python()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        venv = Path(python).parent.parent
        self.log = venv / f"infinity-{self.port}.log"
        with open(self.log, "w") as out:
            self.process = subprocess.Popen(
                [str(venv / "bin" / "infinity_emb"), "v2", "--model-id", str(self._shadow(venv)), "--served-model-name",
                 self.NAME, "--engine", "torch", "--device", "cpu", "--batch-size", str(self.batch), "--host",
                 "127.0.0.1", "--port", str(self.port), "--log-level", "warning"],
                stdout=out, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + INFINITY_START_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log.read_text().strip().splitlines()[-1:] if self.log.is_file() else []
                raise RuntimeError(f"infinity-emb exited {self.process.returncode}: {' '.join(tail)[:200]}")
            try:
                connection = self._connection()
                connection.request("GET", "/health")
                if connection.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"infinity-emb did not answer /health in {INFINITY_START_S} s (log: {self.log})")

    def _shadow(self, venv: Path) -> Path:
        """The model's folder as infinity-emb is given it: links to its files, but a tokenizer_config.json and a
        sentence_bert_config.json that truncate at the pipeline's max_length (as the sentence-transformers anchor
        sets max_seq_length: a plain folder takes the tokenizer's model_max_length, a sentence-transformers folder
        its max_seq_length), so that all do the same work on a long text."""
        shadow = venv / "infinity-models" / hashlib.sha256(f"{self.folder}:{self.max_length}".encode()).hexdigest()[:16]
        shadow.mkdir(parents=True, exist_ok=True)
        written = {"tokenizer_config.json": "model_max_length", "sentence_bert_config.json": "max_seq_length"}
        for item in self.folder.iterdir():
            link = shadow / item.name
            if item.name not in written and not link.exists():
                link.symlink_to(item.resolve())
        for name, key in written.items():
            original = self.folder / name
            settings = json.loads(original.read_text()) if original.is_file() else {}
            (shadow / name).write_text(json.dumps({**settings, key: self.max_length}))
        return shadow

    def _connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)

    def _post(self, connection: http.client.HTTPConnection, texts: list[str]) -> list[list[float]]:
        path = "/embeddings" if self.task == TASK_EMBED else "/classify"
        connection.request("POST", path, json.dumps({"model": self.NAME, "input": texts}),
                           {"Content-Type": "application/json"})
        answer = connection.getresponse()
        body = answer.read()
        if answer.status != 200:
            raise RuntimeError(f"infinity-emb answered {answer.status}: {body[:200]!r}")
        data = json.loads(body)["data"]
        if self.task == TASK_EMBED:  # each item says which input it answers ("index")
            return [item["embedding"] for item in sorted(data, key=lambda item: int(item.get("index", 0)))]
        # one list per text, in order: every class's {label, score} (softmax), sorted by score
        order = self._label2id()
        rows = []
        for scores in data:
            row = [0.0] * len(order)
            for item in scores:
                row[order[item["label"]]] = float(item["score"])
            rows.append(row)
        return rows

    def _label2id(self) -> dict[str, int]:
        """The classifier's class of each label infinity-emb answers (its config's id2label), read once."""
        if not self._classes:
            config = json.loads((self.folder / "config.json").read_text())
            self._classes.update({str(label): int(index) for index, label in config.get("id2label", {}).items()})
        return self._classes

    def _caller(self) -> Callable[[], Any]:
        connection = self._connection()

        def call() -> Any:  # the texts in turn across every thread, as perf_analyzer takes its input data
            return self._post(connection, [self.texts[next(self._turns) % len(self.texts)]])

        return call
