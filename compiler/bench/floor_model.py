"""The empty model of `make bench` (compiler/bench/floor.py): the served model's inputs and outputs, and no model.

It runs in Triton's Python backend stub: every request is answered with zeros of the shapes the real model answered
(FLOOR_OUTPUTS: each output's dims per example and numpy dtype), so that what it costs is what serving costs outside
any model: the client, the transport, Triton's scheduler and batcher, and the stub's round trip. Imports only numpy
and the stub's utils.
"""

import json
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        self.batching = int(config.get("max_batch_size", 0)) > 0
        self.first_input = config["input"][0]["name"]
        outputs = json.loads(config["parameters"]["FLOOR_OUTPUTS"]["string_value"])  # name -> dims, numpy dtype
        self.outputs = [(name, np.dtype(spec["dtype"]), spec["dims"]) for name, spec in outputs.items()]

    def execute(self, requests: list[Any]) -> list[Any]:
        responses = []
        for request in requests:
            batch = pb_utils.get_input_tensor_by_name(request, self.first_input).shape()[0] if self.batching else None
            tensors = [pb_utils.Tensor(name, np.zeros(([batch] if batch is not None else []) + dims, dtype))
                       for name, dtype, dims in self.outputs]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
        return responses
