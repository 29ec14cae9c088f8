"""What `serve` loads, without a server: the GPU -> CPU config override and the variant choice."""

from __future__ import annotations

from pathlib import Path

import pytest
from tritonclient.grpc import model_config_pb2 as pb

from compiler.errors import ServerError
from compiler.server.served import read_repository

GPU_CONFIG = """
name: "m"
platform: "pytorch_libtorch"
max_batch_size: 4
input [{ name: "x" data_type: TYPE_FP32 dims: [4] }]
output [{ name: "OUTPUT__0" data_type: TYPE_FP32 dims: [4] }]
instance_group [{ kind: KIND_GPU count: 2 gpus: [0, 1] }, { kind: KIND_CPU count: 1 }]
"""


def _repository(tmp_path: Path, config: str = GPU_CONFIG, variant: str | None = None) -> Path:
    folder = tmp_path / "models" / "m"
    (folder / "1").mkdir(parents=True)
    (folder / "config.pbtxt").write_text(config)
    if variant:
        (folder / "configs").mkdir()
        (folder / "configs" / f"{variant}.pbtxt").write_text(config.replace("count: 2", "count: 3"))
    return tmp_path / "models"


def test_without_a_gpu_kind_gpu_groups_load_as_kind_cpu_and_the_files_stay(tmp_path: Path) -> None:
    repository = _repository(tmp_path)
    before = (repository / "m" / "config.pbtxt").read_text()
    [model] = read_repository(repository, has_gpu=False)
    assert model.override is not None and model.note is not None
    groups = [(g["kind"], g["count"], g.get("gpus")) for g in model.override["instance_group"]]
    assert groups == [("KIND_CPU", 2, None), ("KIND_CPU", 1, None)]  # kinds changed, counts kept, GPU ids dropped
    assert model.override["max_batch_size"] == 4 and model.override["input"][0]["name"] == "x"
    assert [g.kind for g in model.config.instance_group] == [pb.ModelInstanceGroup.KIND_GPU,
                                                              pb.ModelInstanceGroup.KIND_CPU]
    assert (repository / "m" / "config.pbtxt").read_text() == before


def test_with_a_gpu_or_without_gpu_groups_nothing_is_overridden(tmp_path: Path) -> None:
    assert read_repository(_repository(tmp_path), has_gpu=True)[0].override is None
    cpu_only = GPU_CONFIG.replace("{ kind: KIND_GPU count: 2 gpus: [0, 1] }, ", "")
    assert read_repository(_repository(tmp_path / "cpu", cpu_only), has_gpu=False)[0].override is None


def test_a_variant_config_is_the_one_read_and_a_missing_variant_is_named(tmp_path: Path) -> None:
    repository = _repository(tmp_path, variant="big")
    [model] = read_repository(repository, has_gpu=False, variant="big")
    assert model.config_file == "configs/big.pbtxt" and model.config.instance_group[0].count == 3
    with pytest.raises(ServerError, match="no model in .* has a 'small' variant"):
        read_repository(repository, has_gpu=False, variant="small")
