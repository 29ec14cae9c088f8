"""A model that takes longer to load than asked is named in a LoadTimeout, a ServerError (it was an internal error:
a bare socket timeout), with the real tritonserver; the check judge restarts its server on one."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.errors import LoadTimeout, ServerError
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


def test_a_load_that_outlasts_its_timeout_names_the_model(tmp_path: Path) -> None:
    (tmp_path / "slow" / "1").mkdir(parents=True)
    (tmp_path / "slow" / "config.pbtxt").write_text(CONFIG)
    (tmp_path / "slow" / "1" / "model.py").write_text(MODEL)
    with TritonProcess(tmp_path, explicit_models=True) as server:
        server.wait_live()
        with pytest.raises(LoadTimeout) as raised:
            server.load_model("slow", timeout=2)
    assert isinstance(raised.value, ServerError)  # the CLI says it as a user error, file and model named
    assert "model 'slow' had not loaded 2 s after its load request" in str(raised.value)
