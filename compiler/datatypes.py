"""Triton's datatype table: the one place that knows every TYPE_* value.

Each row gives the model-configuration name (``TYPE_FP32``), the name used on
the wire by the HTTP/gRPC API and tritonclient (``FP32``), the PyTorch dtype,
the NumPy dtype, and whether Triton's PyTorch (libtorch) backend can serve it.
Torch dtypes are kept as names so that importing this module never imports
torch (a no-op build must stay fast).

    >>> lookup("FP32").config_name
    'TYPE_FP32'
    >>> lookup("TYPE_INT64").torch_name
    'int64'
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from compiler.releases import BF16_SINCE, PYTORCH_STRING_SINCE, Release

if TYPE_CHECKING:  # this module never imports torch or numpy at run time
    import numpy as np
    import torch

#: Tensors by their model input (or output) name: torch's, as a module is called and an export proved.
Tensors = dict[str, "torch.Tensor"]
#: The same by name as numpy arrays: what a client sends and Triton answers.
Arrays = dict[str, "np.ndarray"]
#: Either, by input name, as a request is made of them (client/requests.py turns tensors into arrays).
Sendable = Mapping[str, "torch.Tensor | np.ndarray"]


@dataclass(frozen=True)
class DataType:
    config_name: str  # TYPE_FP32, as in config.pbtxt
    api_name: str  # FP32, as in the inference protocol and tritonclient
    torch_name: str | None  # attribute of the torch module; None: no tensor form
    numpy_name: str | None  # numpy dtype name; None: no numpy form
    pytorch_backend: bool  # served by the PyTorch backend (at some release)
    since: str | None = None  # first release that knows the type
    pytorch_backend_since: str | None = None  # first release whose PyTorch backend serves it

    def torch_dtype(self) -> Any:
        import torch

        if self.torch_name is None:
            raise ValueError(f"{self.config_name} has no torch tensor form")
        return getattr(torch, self.torch_name)

    def numpy_dtype(self) -> Any:
        """numpy's dtype; BF16 is ml_dtypes' bfloat16, the form tritonclient sends and returns it in (numpy has
        none of its own)."""
        import numpy as np

        if self.numpy_name is None:
            raise ValueError(f"{self.config_name} has no numpy form")
        if self.numpy_name == "bfloat16":
            import ml_dtypes

            return np.dtype(ml_dtypes.bfloat16)
        return np.dtype(self.numpy_name)

    @property
    def is_floating(self) -> bool:
        return self.api_name in {"FP16", "FP32", "FP64", "BF16"}

    @property
    def is_integer(self) -> bool:
        return self.api_name.startswith(("INT", "UINT"))

    def served_by_pytorch(self, release: Release) -> bool:
        if not self.pytorch_backend:
            return False
        return self.pytorch_backend_since is None or release.at_least(self.pytorch_backend_since)

    def known_at(self, release: Release) -> bool:
        return self.since is None or release.at_least(self.since)


TABLE: tuple[DataType, ...] = (
    DataType("TYPE_BOOL", "BOOL", "bool", "bool", True),
    DataType("TYPE_UINT8", "UINT8", "uint8", "uint8", True),
    DataType("TYPE_UINT16", "UINT16", "uint16", "uint16", False),
    DataType("TYPE_UINT32", "UINT32", "uint32", "uint32", False),
    DataType("TYPE_UINT64", "UINT64", "uint64", "uint64", False),
    DataType("TYPE_INT8", "INT8", "int8", "int8", True),
    DataType("TYPE_INT16", "INT16", "int16", "int16", True),
    DataType("TYPE_INT32", "INT32", "int32", "int32", True),
    DataType("TYPE_INT64", "INT64", "int64", "int64", True),
    DataType("TYPE_FP16", "FP16", "float16", "float16", True),
    DataType("TYPE_FP32", "FP32", "float32", "float32", True),
    DataType("TYPE_FP64", "FP64", "float64", "float64", True),
    DataType("TYPE_STRING", "BYTES", None, "object", True, pytorch_backend_since=PYTORCH_STRING_SINCE),
    # served by no branch of NVIDIA's PyTorch backend we have the sources of (compat/aoti_rules.py: AOTI-BF16)
    DataType("TYPE_BF16", "BF16", "bfloat16", "bfloat16", False, since=BF16_SINCE),
)

_BY_NAME: dict[str, DataType] = {}
for _row in TABLE:
    _BY_NAME[_row.config_name] = _row
    _BY_NAME[_row.api_name] = _row
_BY_NAME["STRING"] = _BY_NAME["TYPE_STRING"]
_BY_TORCH = {row.torch_name: row for row in TABLE if row.torch_name}


class UnknownDataType(ValueError):
    pass


def lookup(name: str) -> DataType:
    """Find a datatype by its config name (TYPE_FP32) or API name (FP32)."""
    key = str(name).strip().upper()
    if key in _BY_NAME:
        return _BY_NAME[key]
    choices = sorted({row.config_name for row in TABLE})
    close = difflib.get_close_matches(key, choices + sorted(_BY_NAME), n=1, cutoff=0.6)
    suggestion = f"; did you mean {_BY_NAME[close[0]].config_name}?" if close else ""
    raise UnknownDataType(f"unknown Triton datatype '{name}'{suggestion}")


def from_torch(dtype: Any) -> DataType:
    """The Triton datatype of a torch dtype (torch.float32 -> TYPE_FP32)."""
    name = str(dtype).removeprefix("torch.")
    if name not in _BY_TORCH:
        raise UnknownDataType(f"torch dtype {dtype} has no Triton datatype")
    return _BY_TORCH[name]


def pytorch_allowed(release: Release) -> list[str]:
    """Config names the PyTorch backend of `release` serves, for error messages."""
    return [row.config_name for row in TABLE if row.served_by_pytorch(release) and row.known_at(release)]


def to_numpy(tensor: Any) -> Any:
    """A torch tensor as the numpy array tritonclient takes (bfloat16 as ml_dtypes' bfloat16, bit for bit)."""
    import torch

    value = tensor.detach().cpu()
    if value.dtype == torch.bfloat16:
        return value.view(torch.int16).numpy().view(lookup("BF16").numpy_dtype())
    return value.numpy()


def to_torch(array: Any) -> Any:
    """A numpy array (as tritonclient returns it) as a torch tensor; ml_dtypes' bfloat16 becomes torch.bfloat16."""
    import numpy as np
    import torch

    if array.dtype == lookup("BF16").numpy_dtype():
        return torch.from_numpy(np.ascontiguousarray(array).view(np.int16).copy()).view(torch.bfloat16)
    return torch.from_numpy(np.array(array, copy=True, order="C"))
