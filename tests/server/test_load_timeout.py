"""A load that gets no answer (too slow, or the server died) is a LoadUnanswered, a ServerError that names the model
and cites the server's log (both were internal errors: a bare socket timeout, a closed connection), with the real
tritonserver; the check judge restarts its server on one."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from compiler.errors import LoadUnanswered, ServerError, ServerUnanswered
from compiler.server.process import TritonProcess

pytestmark = pytest.mark.tritonserver

CONFIG = """name: "slow"
backend: "python"
input [{ name: "x", data_type: TYPE_FP32, dims: [1] }]
output [{ name: "y", data_type: TYPE_FP32, dims: [1] }]
instance_group [{ kind: KIND_CPU }]
"""

MODEL = """import time


class TritonPythonModel:
    def initialize(self, args):
        time.sleep(8)

    def execute(self, requests):
        return []
"""


def _load(repository: Path, model_py: str, timeout: float) -> str:
    """What the LoadUnanswered says when a one-model repository running `model_py` is loaded."""
    (repository / "slow" / "1").mkdir(parents=True)
    (repository / "slow" / "config.pbtxt").write_text(CONFIG)
    (repository / "slow" / "1" / "model.py").write_text(model_py)
    with TritonProcess(repository, explicit_models=True) as server:
        server.wait_live()
        with pytest.raises(LoadUnanswered) as raised:
            server.load_model("slow", timeout=timeout)
    assert isinstance(raised.value, ServerError)  # the CLI says it as a user error, file and model named
    return str(raised.value)


def test_a_load_that_outlasts_its_timeout_names_the_model(tmp_path: Path) -> None:
    assert "model 'slow' had not loaded 2 s after its load request" in _load(tmp_path, MODEL, timeout=2)


KILLER = """import os
import signal


class TritonPythonModel:
    def initialize(self, args):
        os.killpg(os.getpgid(0), signal.SIGKILL)  # the server's process group: tritonserver dies loading this model
"""


def test_a_server_that_dies_while_loading_is_said_with_its_log(tmp_path: Path) -> None:
    said = _load(tmp_path, KILLER, timeout=30)
    assert "tritonserver closed the connection while loading model 'slow'" in said
    assert "the server has exited" in said and "tritonserver log (" in said


def test_every_request_to_a_dead_server_is_said_with_what_it_asked(tmp_path: Path) -> None:
    """Not only a load: listing, unloading, reading a config of a server that died were internal errors (a bare
    URLError) that the check judge and the stub watch could not tell from a bug of ours."""
    with TritonProcess(tmp_path, explicit_models=True) as server:
        server.wait_live()
        server._signal_group(signal.SIGKILL)
        server._process.wait(timeout=30)  # type: ignore[union-attr]
        asked = {"listing its models": server.model_states, "unloading model 'x'": lambda: server.unload_model("x"),
                 "reading the config of 'x'": lambda: server.served_config("x"),
                 "loading model 'x'": lambda: server.load_model("x")}
        for doing, ask in asked.items():
            with pytest.raises(ServerUnanswered) as raised:
                ask()
            said = str(raised.value)
            assert f"tritonserver refused the connection while {doing} (ConnectionRefusedError; the server has " \
                   "exited)" in said and "tritonserver log (" in said, said
        with pytest.raises(LoadUnanswered):
            server.load_model("x")
