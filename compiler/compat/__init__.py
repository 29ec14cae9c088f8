"""Will a model file load, and answer alike, in the torch of the target release's image?

Neither TorchScript nor AOTInductor promises anything across torch versions. This package knows which PyTorch each
Triton release ships (pytorch_versions), what a saved TorchScript file reveals about the torch that wrote it and the
operators it calls (torchscript, fit: findings for `build` and `check`), the release rules of AOTI packages
(aoti_rules), and proves a file again in the target's torch (cross_proof).
"""

from compiler.compat.fit import Fit, assess
from compiler.compat.pytorch_versions import TorchVersion, libtorch_of

__all__ = ["Fit", "TorchVersion", "assess", "libtorch_of"]
