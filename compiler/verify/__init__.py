"""Prove a built repository in a real tritonserver against eager PyTorch.

    checks = verify(Path("models.yaml"), Path("Triton/models"))
    failed = [c for c in checks if not c.ok]
"""

from compiler.verify.result import Check
from compiler.verify.runner import verify

__all__ = ["Check", "verify"]
