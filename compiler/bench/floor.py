"""The serving floor of a model: an empty model with its inputs and outputs, served beside it in the same server.

Served c1 p50 minus the built file's in-process batch-1 p50 is what serving adds to one request. Part of that no
model can win back: the client, the transport, Triton's scheduler and NVIDIA's PyTorch backend around the model
(its input and output copies). The empty model pays exactly that part: a TorchScript module, run by the same backend,
that answers zeros of the shapes the real model answered; so the report can say how much of the gap is the model's
own run. It is loaded over the model repository extension, config and model.pt in the request (`file:1/model.pt`),
so the served repository is not touched.

    name = load_floor(server, model, profiling)     # "<model>__floor", answering like <model> with zeros
"""

from __future__ import annotations

import copy
import importlib.util
import io
import tempfile
from pathlib import Path
from typing import Any

from compiler import datatypes
from compiler.backend.pytorch import binding_rules as rules
from compiler.client.requests import infer_inputs
from compiler.export.examples import Plan, make_inputs, plans_for
from compiler.manifest.schema import ModelSpec
from compiler.profiling.writer import commands_for_copy
from compiler.repository import layout
from compiler.server.process import TritonProcess

SUFFIX = "__floor"
#: what the real model's config carries that the empty one must not: its platform and file (a package's, for one),
#: its backend settings and warmup samples
_DROPPED = ("platform", "backend", "runtime", "default_model_filename", "parameters", "model_warmup")


def floor_config(served: dict[str, Any], name: str) -> dict[str, Any]:
    """The served config (JSON, as tritonserver gives it) as the empty model's: same inputs, outputs, batching and
    instances, a TorchScript model of NVIDIA's PyTorch backend."""
    config = copy.deepcopy(served)
    for key in _DROPPED:
        config.pop(key, None)
    config.update(name=name, platform=layout.PYTORCH_PLATFORM, backend=layout.PYTORCH_BACKEND)
    for group in config.get("instance_group", []):
        group.pop("name", None)  # the served config names each group after the model
    return config


def floor_module(config: dict[str, Any], shapes: dict[str, list[int]]) -> bytes:
    """A TorchScript file whose forward() takes the config's inputs (bound in config order: the backend's strict
    ordering, whatever the names) and returns zeros of each output's per-example shape and dtype, in the order the
    backend reads the outputs (<name>__<index>, else config order), batched like the first input."""
    import torch

    outputs = [io["name"] for io in config["output"]]
    _, index = rules.bind_outputs(outputs)
    ordered = sorted(outputs, key=lambda n: index[n])
    batched = int(config.get("max_batch_size", 0)) > 0
    arguments = ", ".join(f"x{i}: torch.Tensor" for i in range(len(config["input"])))
    lines = [f"def forward(self, {arguments}):", "    batch = x0.shape[0]" if batched else "    batch = 0"]
    made = []
    for number, output in enumerate(ordered):
        spec = next(io for io in config["output"] if io["name"] == output)
        dims = (["batch"] if batched else []) + [str(d) for d in shapes[output]]
        dtype = datatypes.lookup(spec["data_type"]).torch_name
        lines.append(f"    out{number} = torch.zeros([{', '.join(dims)}], dtype=torch.{dtype})")
        made.append(f"out{number}")
    lines.append(f"    return ({', '.join(made)},)" if len(made) > 1 else f"    return {made[0]}")
    source = "import torch\n\n\nclass Empty(torch.nn.Module):\n" + "".join(f"    {line}\n" for line in lines)
    with tempfile.TemporaryDirectory(prefix="floor-") as folder:  # TorchScript compiles from a source file
        path = Path(folder) / "empty_model.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location("empty_model", path)
        assert spec is not None and spec.loader is not None
        generated = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(generated)
        buffer = io.BytesIO()
        torch.jit.save(torch.jit.script(generated.Empty()), buffer)
    return buffer.getvalue()


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
    config = floor_config(server.served_config(model.name), name)
    module = floor_module(config, answered_shapes(server.http_url, model))
    server.load_model(name, config, files={f"1/{layout.TORCHSCRIPT_FILENAME}": module})
    commands_for_copy(profiling, model.name, name)
    return name
