"""The pipelines in `make bench`: each served ensemble, measured by perf_analyzer with raw texts or image bytes,
against the same steps run in one process (the step code the served steps run, around eager PyTorch: tokenize a
batch, the module at that batch, pool); and where a served request's time goes, per step, from Triton's statistics.

    data = input_data(plan, items)           # perf_analyzer's --input-data for raw inputs
"""

from __future__ import annotations

import base64
import itertools
import json
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compiler.bench.load import Measurement

if TYPE_CHECKING:
    from compiler.manifest.wiring import PipelinePlan


@dataclass
class PipelineBench:
    name: str
    steps: list[str]  # the ensemble's step models, in order
    batch: int  # the in-process batch (the ensemble's max_batch_size, at most 16)
    in_process_single: Measurement | None = None
    in_process: Measurement | None = None
    served: list[Any] = field(default_factory=list)  # PaMeasurements, their stats per step
    anchor: Measurement | None = None  # the library in-process on the same texts (anchors.py)
    anchor_task: str = ""  # what the anchors compute (anchors.TASK_EMBED, TASK_CLASSIFY)
    anchor_error: str = ""  # why there is no anchor row, where one was due
    anchor_difference: float | None = None  # max |anchor - pipeline in-process| over its first texts
    infinity: Measurement | None = None  # infinity-emb serving the same folder, the same texts (anchors.py)
    infinity_error: str = ""
    infinity_difference: float | None = None
    failed: list[str] = field(default_factory=list)  # perf_analyzer cells that gave no report (`label: why`)


def _encoded(item: str | bytes) -> dict[str, Any]:
    """One raw input as perf_analyzer's JSON takes a BYTES element: a text as content; other bytes as b64 of the
    serialized tensor (each element 4-byte little-endian length, then its bytes), as Triton's wire format has it."""
    if isinstance(item, str):
        return {"content": [item], "shape": [1]}
    return {"b64": base64.b64encode(struct.pack("<I", len(item)) + item).decode(), "shape": [1]}


def input_data(input_name: str, items: Sequence[str | bytes]) -> dict[str, Any]:
    return {"data": [{input_name: _encoded(item)} for item in items]}


def write_commands(name: str, input_name: str, items: Sequence[str | bytes], folder: Path,
                   concurrencies: Sequence[int]) -> dict[int, list[str]]:
    """perf_analyzer's input file for the pipeline, and one command per concurrency (one raw input per request)."""
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "input_data.json"
    data.write_text(json.dumps(input_data(input_name, items)))
    return {c: ["perf_analyzer", "-m", name, "--input-data", str(data), "-b", "1", "--concurrency-range", f"{c}:{c}",
                "-i", "grpc", "-u", "localhost:8001"] for c in concurrencies}


#: The bench's texts for a text pipeline: 512, of 4 to 60 words each (the served rows, the in-process rows and the
#: anchors all get these).
BENCH_TEXTS = 512
TEXT_WORDS = (4, 60)


def bench_items(plan: Any, served: Path, base: Path) -> list[str | bytes]:
    """What the bench sends a pipeline: for a text pipeline, BENCH_TEXTS texts of varied length from the
    tokenizer's vocabulary (then the pipeline's own example texts); for others, what verify sends."""
    import numpy as np

    from compiler.pipeline.proof import raw_inputs, texts

    first = plan.steps[0]
    if first.kind != "tokenize":
        return raw_inputs(plan, served, base)
    lengths = np.random.default_rng(3).integers(TEXT_WORDS[0], TEXT_WORDS[1] + 1, BENCH_TEXTS)
    example = plan.spec.example
    return list(texts(served / first.model / "1" / "tokenizer", list(example.texts or []) if example else [],
                      [int(n) for n in lengths]))


def in_process_caller(chain: Any, input_name: str, items: Sequence[str | bytes],
                      batch: int) -> Callable[[], Callable[[], Any]]:
    """The whole pipeline in this process at `batch` raw inputs per call (the proof's chain around eager), each call
    the next `batch` of `items`, in their order."""
    from compiler.pipeline.proof import as_request

    chunks = max(1, len(items) // batch)
    requests = [{input_name: as_request([items[(k * batch + i) % len(items)] for i in range(batch)])}
                for k in range(chunks)]

    def make() -> Callable[[], Any]:
        turn = itertools.count()
        return lambda: chain.run(requests[next(turn) % chunks])

    return make


def _anchor_folder(plan: PipelinePlan, models: dict[str, Any], base: Path, work: Path) -> tuple[Path, str] | None:
    """The folder the anchors load and their task, for a text pipeline whose answer a library computes alike: a
    transformers model mean pooled and normalised (an embedding: the model's own folder, as sentence-transformers
    and infinity-emb take a plain folder), or a transformers sequence classifier whose logits the classify step reads
    (the module as the build loaded it, saved into `work` with its tokenizer's files: a head the checkpoint lacks is
    initialised in that load, seeded, and the anchors must run that head); else None."""
    from compiler.bench.anchors import TASK_CLASSIFY, TASK_EMBED
    from compiler.manifest.schema import TransformersSource
    from compiler.sources.static import transformers_folder

    first = plan.steps[0]
    model = models.get(first.manifest_model or "")
    source = getattr(model, "source", None)
    if first.kind != "tokenize" or model is None or not isinstance(source, TransformersSource):
        return None
    folder = transformers_folder(model, source, base, ())
    if folder is None:
        return None
    for step in plan.steps:  # pooled and normalised, by a pool step or inside the encoder (mode None: no pooling)
        settings = step.settings
        if (settings["kind"] == "pool" or settings["kind"] == "encoder") and settings["mode"] == "mean" and \
                settings["normalize"]:
            return folder, TASK_EMBED
    kinds = [s.kind for s in plan.steps]
    if kinds in (["tokenize", "encoder", "classify"], ["tokenize", "model", "classify"]) and \
            "SequenceClassification" in source.auto_class:
        return _saved_classifier(model, folder, base, work / "anchor-model"), TASK_CLASSIFY
    return None


def _saved_classifier(model: Any, folder: Path, base: Path, target: Path) -> Path:
    import shutil

    from compiler.sources import load_source

    weights = (".safetensors", ".bin", ".pt", ".pth", ".h5", ".msgpack", ".onnx")
    if target.exists():
        shutil.rmtree(target)
    module = load_source(model, base)
    module.save_pretrained(str(target))
    # transformers 5 leaves a default id2label out of config.json; infinity-emb counts a classifier's labels there
    # (fewer than 2: a reranker) and both anchors name their classes by it
    config = json.loads((target / "config.json").read_text())
    config["id2label"] = {str(index): label for index, label in module.config.id2label.items()}
    config["label2id"] = {label: int(index) for index, label in module.config.id2label.items()}
    (target / "config.json").write_text(json.dumps(config, indent=2))
    for item in folder.iterdir():
        if item.is_file() and item.name != "config.json" and not item.name.endswith(weights):
            shutil.copy(item, target / item.name)
    return target


def anchor_cells(plan: PipelinePlan, models: dict[str, Any], base: Path, served: Path, items: Sequence[str | bytes],
                 batch: int, concurrency: int, seconds: float, work: Path) -> tuple[Any, Any]:
    """The library in-process on the same texts with the same model (sentence-transformers encode(), or transformers'
    text-classification pipeline for a classifier), and infinity-emb serving that folder at `concurrency`
    (anchors.py); (None, None) where the pipeline is neither kind of text pipeline."""
    from compiler.bench.anchors import TASK_EMBED, InfinityCell, LibraryCell

    found = _anchor_folder(plan, models, base, work)
    if found is None:
        return None, None
    folder, task = found
    texts = [item for item in items if isinstance(item, str)]
    # the longest sequence the served tokenizer keeps (the build settles it: the step's, its tokenizer's or the model's)
    max_length = int(json.loads((served / plan.steps[0].model / "1" / "step.json").read_text())["max_length"])
    library = "sentence-transformers encode" if task == TASK_EMBED else "transformers text-classification"
    return (LibraryCell(f"{library}, batch {batch}", folder, texts, batch, max_length, seconds, task),
            InfinityCell(f"infinity-emb http c{concurrency}, batch {batch}", folder, texts, batch, max_length,
                         concurrency, seconds, task))
