"""Will a TorchScript file load in the target release's libtorch?

TorchScript is not forward-compatible: a file saved by today's torch may use
operators, or operator arguments, that the older libtorch inside an older
tritonserver does not know. This package knows which PyTorch each Triton
release ships (pytorch_versions), what a saved file reveals about the torch
that wrote it and the operators it calls (torchscript), and turns both into
findings for `build` and `check` (fit).
"""

from compiler.compat.fit import Fit, assess
from compiler.compat.pytorch_versions import TorchVersion, libtorch_of

__all__ = ["Fit", "TorchVersion", "assess", "libtorch_of"]
