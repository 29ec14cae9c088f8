"""What `warmup:` buys: the first request after READY, with and without model_warmup, for every model and pipeline.

In one tritonserver, each subject is unloaded and loaded again (explicit model control) with its served config,
model_warmup removed or present (a model gets the samples `warmup: true` writes; a pipeline's steps keep the ones
its build wrote), and then timed: the load, the first request, and the median of the next five. A pipeline is
loaded again with every step and model it runs, so that nothing in it is warm from an earlier request.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format

from compiler.manifest.schema import ModelSpec
from compiler.server.process import TritonProcess

STEADY_REQUESTS = 5


@dataclass
class FirstRequest:
    name: str
    warm: bool  # loaded with model_warmup
    load_s: float
    first_ms: float
    steady_ms: float


def _config(server: TritonProcess, name: str, samples: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The served config with model_warmup replaced by `samples` (None: kept as it is)."""
    config = copy.deepcopy(server.served_config(name))
    if samples is not None:
        config.pop("model_warmup", None)
        if samples:
            config["model_warmup"] = samples
    return config


def model_samples(model: ModelSpec) -> list[dict[str, Any]]:
    from compiler.triton_config.builder import model_warmups

    return [json_format.MessageToDict(s, preserving_proto_field_name=True) for s in model_warmups(model)]


def measure(server: TritonProcess, name: str, reload: Sequence[tuple[str, dict[str, Any]]],
            send: Callable[[], Any], warm: bool) -> FirstRequest:
    """Load every (model, config) of `reload` again, in order (steps before their ensemble), then time `send`."""
    started = time.perf_counter()
    for model, _ in reversed(reload):  # the ensemble first: its steps cannot unload while it holds them
        server.unload_model(model)
    for model, config in reload:
        server.load_model(model, config)
    loaded = time.perf_counter() - started
    started = time.perf_counter()
    send()
    first = (time.perf_counter() - started) * 1000
    steady = []
    for _ in range(STEADY_REQUESTS):
        started = time.perf_counter()
        send()
        steady.append((time.perf_counter() - started) * 1000)
    return FirstRequest(name, warm, loaded, first, statistics.median(steady))


def reload_plan(server: TritonProcess, subject: str, models: dict[str, ModelSpec], steps: Sequence[str],
                warm: bool) -> list[tuple[str, dict[str, Any]]]:
    """What to load again for `subject` (a model, or an ensemble with `steps`), each with its config: without
    model_warmup, or with the samples its `warmup:` gives (a model) or its build wrote (a generated step)."""
    plan = []
    for name in [*steps, subject] if steps else [subject]:
        if name in models:
            plan.append((name, _config(server, name, model_samples(models[name]) if warm else [])))
        elif name == subject and steps:  # the ensemble: no warmup of its own
            plan.append((name, _config(server, name, None)))
        else:  # a generated step: the build's samples, or none
            plan.append((name, _config(server, name, None if warm else [])))
    return plan
