"""A pipeline step as a Python-backend model: the step of steps.py (beside this file in the version folder) with
the settings in step.json, run on every request of an execute() call.

A request the step cannot answer (text that is not UTF-8, bytes that are no image) is answered 400 with the
reason; the others of the same batch are answered as if it were not there.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils  # provided by the Python backend stub

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import steps  # noqa: E402 - beside this file


class TritonPythonModel:
    def initialize(self, args: dict[str, str]) -> None:
        self.config = json.loads(args["model_config"])
        self.name = args["model_name"]
        self.step = steps.load(os.path.dirname(os.path.abspath(__file__)))
        self.inputs = [tensor["name"] for tensor in self.config["input"]]
        self.outputs = {tensor["name"]: tensor["data_type"] for tensor in self.config["output"]}

    def _arrays(self, request: Any) -> dict[str, np.ndarray]:
        arrays = {}
        for name in self.inputs:
            tensor = pb_utils.get_input_tensor_by_name(request, name)
            if tensor is None:
                raise steps.RequestError(f"the request has no input '{name}'")
            arrays[name] = tensor.as_numpy()
        return arrays

    def _response(self, answer: dict[str, np.ndarray]) -> Any:
        tensors = []
        for name, data_type in self.outputs.items():
            value = answer[name]
            if data_type != "TYPE_STRING":
                value = np.ascontiguousarray(value)
            tensors.append(pb_utils.Tensor(name, value))
        return pb_utils.InferenceResponse(output_tensors=tensors)

    def execute(self, requests: list[Any]) -> list[Any]:
        try:
            answers = self.step.run([self._arrays(request) for request in requests])
            return [self._response(answer) for answer in answers]
        except Exception:
            if len(requests) == 1:
                return [self._alone(requests[0])]
            return [self._alone(request) for request in requests]  # one bad request fails alone

    def _alone(self, request: Any) -> Any:
        try:
            return self._response(self.step.run([self._arrays(request)])[0])
        except steps.RequestError as err:
            return pb_utils.InferenceResponse(error=pb_utils.TritonError(
                f"invalid request: {err}", pb_utils.TritonError.INVALID_ARG))
        except Exception as err:
            return pb_utils.InferenceResponse(error=pb_utils.TritonError(f"{self.name} failed: {err}"))
