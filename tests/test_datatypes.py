"""The datatype table against Triton's own sources of truth (the protobuf enum, tritonclient)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tritonclient.grpc import model_config_pb2 as pb
from tritonclient.utils import triton_to_np_dtype

from compiler import datatypes
from compiler.releases import Release


def test_every_config_type_is_in_the_table() -> None:
    enum_names = {name for name in pb.DataType.keys() if name != "TYPE_INVALID"}  # noqa: SIM118 (protobuf enum)
    assert {row.config_name for row in datatypes.TABLE} == enum_names


@pytest.mark.parametrize("row", datatypes.TABLE, ids=lambda r: r.config_name)
def test_numpy_form_matches_tritonclient(row: datatypes.DataType) -> None:
    expected = triton_to_np_dtype(row.api_name)
    assert row.numpy_dtype() == np.dtype(expected)  # BF16: ml_dtypes' bfloat16, as tritonclient takes it


@pytest.mark.parametrize("row", [r for r in datatypes.TABLE if r.torch_name], ids=lambda r: r.config_name)
def test_torch_form_round_trips(row: datatypes.DataType) -> None:
    assert datatypes.from_torch(row.torch_dtype()) is row
    assert isinstance(row.torch_dtype(), torch.dtype)


def test_lookup_accepts_config_and_api_names() -> None:
    assert datatypes.lookup("FP32") is datatypes.lookup("TYPE_FP32")
    assert datatypes.lookup("bytes").config_name == "TYPE_STRING"


def test_unknown_dtype_suggests_the_closest() -> None:
    with pytest.raises(datatypes.UnknownDataType, match="did you mean TYPE_FP32"):
        datatypes.lookup("TYPE_FP23")


def test_pytorch_backend_types_per_release() -> None:
    now = datatypes.pytorch_allowed(Release.parse("24.10"))
    for unsupported in ("TYPE_UINT16", "TYPE_UINT32", "TYPE_UINT64", "TYPE_BF16"):
        assert unsupported not in now
    assert "TYPE_STRING" in now
    assert "TYPE_STRING" not in datatypes.pytorch_allowed(Release.parse("22.02"))


def test_bf16_goes_to_tritonclient_and_back_bit_for_bit() -> None:
    values = torch.tensor([[1.5, -2.25, 3.0e-3, float("inf")]], dtype=torch.bfloat16)
    array = datatypes.to_numpy(values)
    assert array.dtype == datatypes.lookup("BF16").numpy_dtype()
    back = datatypes.to_torch(array)
    assert back.dtype == torch.bfloat16 and torch.equal(back, values)
    assert datatypes.to_torch(np.array([1, 2], dtype=np.int64)).dtype == torch.int64


def test_infer_sends_bf16_and_summarises_it() -> None:
    from compiler.client.infer import ServedConfig, TensorSpec, random_inputs, summarize

    config = ServedConfig("m", 4, [TensorSpec("INPUT__0", "BF16", [8])], [TensorSpec("RESULT", "BF16", [4])])
    arrays = random_inputs(config)
    assert arrays["INPUT__0"].dtype == datatypes.lookup("BF16").numpy_dtype() and arrays["INPUT__0"].shape == (1, 8)
    assert "min" in summarize("RESULT", arrays["INPUT__0"])
