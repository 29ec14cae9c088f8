"""PyTorch models run inside tritonserver on NVIDIA's C++ backend built here, not on anything else."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from compiler.server.process import TritonProcess
from compiler.server.watch import stubs_of

pytestmark = pytest.mark.tritonserver


class Double(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2


def test_a_torchscript_model_is_served_by_the_built_library_in_the_server_process(tmp_path: Path) -> None:
    (tmp_path / "double" / "1").mkdir(parents=True)
    torch.jit.trace(Double(), torch.ones(1, 3)).save(str(tmp_path / "double" / "1" / "model.pt"))
    (tmp_path / "double" / "config.pbtxt").write_text(
        'platform: "pytorch_libtorch"\nmax_batch_size: 4\ninput { name: "x" data_type: TYPE_FP32 dims: [3] }\n'
        'output { name: "OUTPUT__0" data_type: TYPE_FP32 dims: [3] }\ninstance_group [{ kind: KIND_CPU }]\n')
    with TritonProcess(tmp_path) as server:
        server.wait_ready(120)
        import tritonclient.http as http

        client = http.InferenceServerClient(server.http_url)
        x = http.InferInput("x", [1, 3], "FP32")
        x.set_data_from_numpy(np.array([[1, 2, 3]], dtype=np.float32))
        assert client.infer("double", [x]).as_numpy("OUTPUT__0").tolist() == [[2, 4, 6]]
        assert server.layout is not None and server.pid is not None
        maps = Path(f"/proc/{server.pid}/maps").read_text()
        library = server.layout.pytorch.library("pytorch").resolve()
        assert str(library) in maps  # NVIDIA's backend, as built for this torch, inside tritonserver
        assert "libtorch_cpu.so" in maps
        assert stubs_of(server.pid) == {}  # no Python stub runs the model (the Python backend is not involved)
        assert "built for torch" in server.layout.pytorch.label
