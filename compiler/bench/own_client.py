"""The bench's own closed-loop client for a perf_analyzer cell that perf_analyzer could not measure: the same
generated command read for its model, its --input-data file (the first sample) and its batch size, sent over the same
protocol at the same concurrency (compiler/profiling/perf_analyzer.py, RUNAWAY, says when).

    make = caller_factory(command, "127.0.0.1:8000", "http")
    measurement = closed_loop("served http c16", make, 16, seconds=1.0)
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from compiler.profiling.perf_analyzer import flag_value


def _array(item: dict[str, Any], datatype: str, batch: int | None) -> Any:
    """One input of perf_analyzer's JSON ({"content": [...]} or {"b64": Triton's serialised bytes}, with "shape")
    as the numpy array a client sends, `batch` copies of it stacked where the model batches."""
    import numpy as np
    from tritonclient.utils import deserialize_bytes_tensor, triton_to_np_dtype

    shape = [int(d) for d in item.get("shape", [])]
    if "b64" in item:
        raw = base64.b64decode(item["b64"])
        if datatype == "BYTES":
            value = deserialize_bytes_tensor(raw)
        elif datatype == "BF16":  # the upper half of a float32's bits, as tritonclient sends BF16 from float32
            value = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            value = np.frombuffer(raw, dtype=triton_to_np_dtype(datatype))
    elif datatype == "BYTES":
        value = np.array([str(v).encode() for v in item["content"]], dtype=np.object_)
    else:
        value = np.asarray(item["content"], dtype=triton_to_np_dtype(datatype))
    value = value.reshape(shape or [-1])
    return np.stack([value] * batch) if batch else value


def batch_size(command: list[str]) -> int:
    """The samples each request of the command carries (its -b)."""
    return int(flag_value(command[1:], "-b") or 1)


def caller_factory(command: list[str], url: str, protocol: str) -> Callable[[], Callable[[], Any]]:
    """A maker of callers (one client each, as closed_loop gives each thread its own) that send the command's
    first sample to its model and wait for the answer; a refused request raises. The model's datatypes and whether
    it batches are asked of the server once, here; the sample's arrays are made once."""
    args = command[1:]
    model = flag_value(args, "-m")
    data_file = flag_value(args, "--input-data")
    if model is None or data_file is None:
        raise ValueError(f"a perf_analyzer command without -m or --input-data: {' '.join(command)}")
    sample = json.loads(Path(data_file).read_text())["data"][0]
    if protocol == "grpc":
        import tritonclient.grpc as client_module
    else:
        import tritonclient.http as client_module  # type: ignore[no-redef]
    grpc = protocol == "grpc"
    asked = client_module.InferenceServerClient(url)
    metadata = asked.get_model_metadata(model, as_json=True) if grpc else asked.get_model_metadata(model)
    config = asked.get_model_config(model, as_json=True) if grpc else asked.get_model_config(model)
    config = config.get("config", config)
    batch = batch_size(command) if int(config.get("max_batch_size", 0) or 0) > 0 else None
    types = {i["name"]: i["datatype"] for i in metadata["inputs"]}
    arrays = {name: _array(item, types[name], batch) for name, item in sample.items()}

    def make() -> Callable[[], Any]:
        client = client_module.InferenceServerClient(url)
        inputs = []
        for name, value in arrays.items():
            tensor = client_module.InferInput(name, list(value.shape), types[name])
            tensor.set_data_from_numpy(value)
            inputs.append(tensor)
        return lambda: client.infer(model, inputs)

    return make
