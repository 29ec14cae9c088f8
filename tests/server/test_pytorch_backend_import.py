"""Our pytorch backend's model.py, as the Python backend's stub imports it."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import ROOT, run_subprocess

PROBE = """
import importlib.util, sys, types
sys.modules["triton_python_backend_utils"] = types.ModuleType("triton_python_backend_utils")
spec = importlib.util.spec_from_file_location("model", sys.argv[1])
model = importlib.util.module_from_spec(spec)
spec.loader.exec_module(model)
print(sorted(name for name in ("torch", "torch._inductor") if name in sys.modules))
print(hasattr(model.TritonPythonModel, "auto_complete_config"))
"""


def test_importing_the_backend_imports_no_torch(tmp_path: Path) -> None:
    """tritonserver starts a stub for every model load only to import this file and ask its class for
    auto_complete_config, before the stubs that serve: torch is for those (initialize()), not for that one."""
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    result = run_subprocess(str(probe), str(ROOT / "compiler" / "backend" / "pytorch" / "model.py"))
    assert result.code == 0, result.err
    assert result.out.splitlines() == ["[]", "False"]
