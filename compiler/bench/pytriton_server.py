"""The user's obvious alternative: PyTriton serving the same model file (TorchScript, or an AOTInductor package run
with `loader.run` on the call spec's flat tensors, as the backend binds them) as a Python callable.

Run as a script by `bench` (its own process, its own tritonserver):
    python -m compiler.bench.pytriton_server MODEL_DIR NAME HTTP GRPC METRICS
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pytriton.decorators import batch
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig, TritonSecurityConfig
from tritonclient.grpc import model_config_pb2 as pb

from compiler import datatypes
from compiler.backend.pytorch import binding_rules as rules
from compiler.backend.pytorch import pt2_names
from compiler.repository import layout
from compiler.triton_config import parse_text


def main() -> None:
    folder, name, http, grpc, metrics = Path(sys.argv[1]), sys.argv[2], *map(int, sys.argv[3:6])
    config = parse_text(layout.config_file(folder).read_text())
    newest = layout.version_dirs(folder)[-1].name
    path = layout.model_file(folder, newest, config)
    outputs = [t.name for t in config.output]
    if config.platform == layout.AOTI_PLATFORM:
        package = torch._inductor.aoti_load_package(str(path))
        names = pt2_names.CallSpec.parse(*package.loader.get_call_spec())
        positions = sorted((names.inputs[t.name], t.name) for t in config.input)
        picks = [names.outputs[n] for n in outputs]

        def run(inputs: dict[str, np.ndarray]) -> list[torch.Tensor]:
            flat = package.loader.run([torch.from_numpy(inputs[n]) for _, n in positions])
            return [flat[k] for k in picks]
    else:
        module = torch.jit.load(str(path)).eval()
        args = [a.name for a in module.forward.schema.arguments[1:]]
        _, index = rules.bind_inputs([t.name for t in config.input], args)
        order = sorted(index, key=index.__getitem__)

        def run(inputs: dict[str, np.ndarray]) -> list[torch.Tensor]:
            result = module(*[torch.from_numpy(inputs[n]) for n in order])
            return [result] if isinstance(result, torch.Tensor) else list(result)

    @batch
    def infer(**inputs: np.ndarray) -> dict[str, np.ndarray]:
        with torch.inference_mode():
            values = run(inputs)
        return {n: values[k].numpy() for k, n in enumerate(outputs)}

    def tensor(t: Any) -> Tensor:
        dtype = datatypes.lookup(pb.DataType.Name(t.data_type)).numpy_dtype()
        return Tensor(name=t.name, dtype=dtype, shape=tuple(int(d) for d in t.dims))

    delay = config.dynamic_batching.max_queue_delay_microseconds  # the same batching as our config.pbtxt
    triton_config = TritonConfig(http_address="127.0.0.1", grpc_address="127.0.0.1", metrics_address="127.0.0.1",
                                 http_port=http, grpc_port=grpc, metrics_port=metrics)
    # PyTriton restricts the statistics and shared-memory endpoints to a generated token; perf_analyzer reads
    # statistics, and this server listens on loopback for the benchmark only: nothing is restricted.
    with Triton(config=triton_config, security_config=TritonSecurityConfig(restricted_endpoints=[])) as triton:
        triton.bind(model_name=name, infer_func=infer, inputs=[tensor(t) for t in config.input],
                    outputs=[tensor(t) for t in config.output],
                    config=ModelConfig(max_batch_size=config.max_batch_size or 1,
                                       batcher=DynamicBatcher(max_queue_delay_microseconds=delay)))
        triton.serve()


if __name__ == "__main__":
    main()
