"""The serving floor of a model: an empty model with its inputs and outputs, served beside it in the same server.

Served c1 p50 minus the built file's in-process batch-1 p50 is what serving adds to one request. Part of that no
backend can win back: the client, the transport, Triton's scheduler and the Python stub's round trip. The empty
model (floor_model.py: zeros of the shapes the real model answered) pays exactly that part, so the report can say
how much of the gap is ours. It is loaded over the model repository extension, config and model.py in the request
(`file:1/model.py`), so the served repository is not touched.

    name = load_floor(server, model, profiling)     # "<model>__floor", answering like <model> with zeros
"""

from __future__ import annotations

import contextlib
import copy
import json
from pathlib import Path
from typing import Any

from compiler import datatypes
from compiler.client.requests import infer_inputs
from compiler.export.examples import Plan, make_inputs, plans_for
from compiler.manifest.schema import ModelSpec
from compiler.profiling.writer import commands_for_copy
from compiler.server.process import TritonProcess

MODEL_FILE = Path(__file__).with_name("floor_model.py")
SUFFIX = "__floor"
#: what the real model's config carries that the empty one must not: its platform, backend, runtime (our Python-based
#: backend's model.py, as the served config says) and file, our backend's settings,
#: and warmup samples (the Python stub needs none)
_DROPPED = ("platform", "backend", "runtime", "default_model_filename", "parameters", "model_warmup")


def floor_config(served: dict[str, Any], name: str, shapes: dict[str, list[int]]) -> dict[str, Any]:
    """The served config (JSON, as tritonserver gives it) as the empty model's: same inputs, outputs, batching and
    instances, run by the Python backend, told each output's per-example shape and numpy dtype (the stub cannot
    import our datatype table)."""
    config = copy.deepcopy(served)
    for key in _DROPPED:
        config.pop(key, None)
    outputs = {io["name"]: {"dims": shapes[io["name"]], "dtype": datatypes.lookup(io["data_type"]).numpy_name}
               for io in config["output"]}
    config.update(name=name, backend="python",
                  parameters={"FLOOR_OUTPUTS": {"string_value": json.dumps(outputs, sort_keys=True)}})
    for group in config.get("instance_group", []):
        # the served config names each group after the model: its stubs would be the model's instance names
        # (<group>_<i>_<j>), which the stub watch and the in-flight records tell models apart by
        group.pop("name", None)
    return config


def answered_shapes(http_url: str, model: ModelSpec) -> dict[str, list[int]]:
    """Each output's shape per example, as the served model answers its first example (batch 1)."""
    import tritonclient.http as http

    base = plans_for(model)[0]
    arrays = make_inputs(model, Plan("floor", 1 if model.max_batch_size else None, base.sizes, seed=7))
    with http.InferenceServerClient(http_url) as client:
        answer = client.infer(model.name, infer_inputs(http, model, arrays)).get_response()
    offset = 1 if model.max_batch_size else 0
    return {out["name"]: [int(d) for d in out["shape"][offset:]] for out in answer["outputs"]}


def load_floor(server: TritonProcess, model: ModelSpec, profiling: Path) -> str:
    """Load `<model>__floor` beside the model, and write its perf_analyzer commands (the model's, renamed) to
    `profiling/<name>/perf_analyzer.txt`. A ServerError where the server refuses it."""
    name = model.name + SUFFIX
    config = floor_config(server.served_config(model.name), name, answered_shapes(server.http_url, model))
    # loaded on purpose: the stub watch takes the stubs alive afterwards as its baseline (unpaused, it took the
    # load for a death of affine__floor_0_0 and reloaded it from the repository, which does not hold it)
    with server.watch.paused() if server.watch else contextlib.nullcontext():
        server.load_model(name, config, files={"1/model.py": MODEL_FILE.read_bytes()})
    commands_for_copy(profiling, model.name, name)
    return name
