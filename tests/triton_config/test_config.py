"""config.pbtxt: golden files for the example models, protobuf round trips, proto3 defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from compiler.deploy.container import compose, dockerfile
from compiler.manifest import load_manifest
from compiler.manifest.schema import ModelSpec
from compiler.triton_config import build_config, parse_text, to_text

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"
MANIFEST = load_manifest(ROOT / "models.yaml")


def _decided(model: ModelSpec) -> str | None:
    """The build's dynamic-batching decision for a committed model (its batch invariance holds: the build proves it;
    tests/acceptance/test_example_repository.py holds the built configs to these files)."""
    from compiler.compat.aoti_rules import unmergeable
    from compiler.export.batch_invariance import Invariance, decide_batching

    unmerged = unmergeable(MANIFEST.manifest.release) if model.export == "aoti" else None
    return decide_batching(model, Invariance(4), "dynamic_batching", unmerged)[0]


@pytest.mark.parametrize("model", MANIFEST.manifest.models, ids=lambda m: m.name)
def test_example_config_matches_golden(model: ModelSpec, request: pytest.FixtureRequest) -> None:
    """The golden files hold what the manifest decides; the one field the build measures (a derived queue policy's
    max_queue_size: the budget over the execution time here) is 0 in them."""
    assert model.outputs is not None  # the committed manifest declares them; the build checks them
    text = to_text(build_config(model, model.outputs, _decided(model)))
    golden = GOLDEN / f"{model.name}.pbtxt"
    if request.config.getoption("--update-golden"):
        golden.write_text(text)
    assert text == golden.read_text()


VARIANTS = [(m, v) for m in MANIFEST.manifest.models for v in sorted(m.variants or {})]


@pytest.mark.parametrize(("model", "variant"), VARIANTS, ids=[f"{m.name}-{v}" for m, v in VARIANTS])
def test_example_variant_configs_match_golden(model: ModelSpec, variant: str, request: pytest.FixtureRequest) -> None:
    resolved = model.for_variant(variant)
    text = to_text(build_config(resolved, model.outputs or [], _decided(resolved)))
    golden = GOLDEN / f"{model.name}.configs.{variant}.pbtxt"
    if request.config.getoption("--update-golden"):
        golden.write_text(text)
    assert text == golden.read_text()


@pytest.mark.parametrize("model", MANIFEST.manifest.models, ids=lambda m: m.name)
def test_config_round_trips_through_protobuf(model: ModelSpec) -> None:
    config = build_config(model, model.outputs or [])
    assert parse_text(to_text(config)) == config


def _spec(**overrides: object) -> ModelSpec:
    data: dict[str, object] = {"name": "m", "source": {"python": "x:y"},
                               "inputs": [{"name": "x", "dtype": "FP32", "dims": [4]}]}
    data.update(overrides)
    return ModelSpec.model_validate(data)


def test_max_batch_size_zero_is_written_explicitly() -> None:
    text = to_text(build_config(_spec(), []))
    assert "\nmax_batch_size: 0\n" in text
    assert parse_text(text).max_batch_size == 0


def test_optional_sections() -> None:
    spec = _spec(max_batch_size=8, instance_group=[{"kind": "KIND_GPU", "count": 2, "gpus": [0]}],
                 dynamic_batching={"max_queue_delay_microseconds": 50, "preferred_batch_size": [4, 8]},
                 parameters={"INFERENCE_MODE": True, "INTRA_OP_THREAD_COUNT": 2})
    config = parse_text(to_text(build_config(spec, [])))
    assert config.instance_group[0].count == 2 and list(config.instance_group[0].gpus) == [0]
    assert list(config.dynamic_batching.preferred_batch_size) == [4, 8]
    assert config.parameters["INFERENCE_MODE"].string_value == "true"
    assert config.parameters["INTRA_OP_THREAD_COUNT"].string_value == "2"
    assert config.platform == "pytorch_libtorch"
    assert list(config.version_policy.specific.versions) == [1]


def test_raw_config_fields_are_merged_and_a_second_scheduler_is_refused() -> None:
    """`config:` adds what the manifest has no key for; it cannot give a model two schedulers."""
    from compiler.errors import ExportError

    raw = {"response_cache": {"enable": True}, "model_transaction_policy": {"decoupled": False},
           "metric_tags": {"team": "search"}}
    spec = _spec(max_batch_size=8, dynamic_batching=True, config=raw)
    config = parse_text(to_text(build_config(spec, [])))
    assert config.response_cache.enable and config.HasField("model_transaction_policy")
    assert dict(config.metric_tags) == {"team": "search"} and config.max_batch_size == 8
    assert config.HasField("dynamic_batching")  # the build's, kept
    stateful = _spec(max_batch_size=8, dynamic_batching=True, config={"sequence_batching": {"max_sequence_idle_"
                                                                                            "microseconds": 5000}})
    with pytest.raises(ExportError) as caught:
        build_config(stateful, [])
    problem = caught.value.problems[0]
    assert problem.field == "config.sequence_batching" and "chose dynamic_batching" in problem.message
    alone = build_config(_spec(max_batch_size=8, dynamic_batching=False, config=stateful.config), [])
    assert alone.sequence_batching.max_sequence_idle_microseconds == 5000  # no scheduler of the build's: taken


def test_an_image_input_says_its_layout() -> None:
    """Triton's image_client.py refuses an input whose format is FORMAT_NONE: the manifest's `format` sets it."""
    from tritonclient.grpc import model_config_pb2 as pb

    spec = _spec(max_batch_size=4, inputs=[{"name": "x", "dtype": "FP32", "dims": [3, 8, 8], "format": "FORMAT_NCHW"}])
    config = parse_text(to_text(build_config(spec, [])))
    assert config.input[0].format == pb.ModelInput.FORMAT_NCHW
    assert parse_text(to_text(build_config(_spec(max_batch_size=4), []))).input[0].format == pb.ModelInput.FORMAT_NONE


def test_scalar_per_example_gets_reshape() -> None:
    spec = _spec(max_batch_size=4, inputs=[{"name": "x", "dtype": "FP32", "dims": []}])
    config = build_config(spec, [])
    assert list(config.input[0].dims) == [1]
    assert config.input[0].HasField("reshape") and list(config.input[0].reshape.shape) == []


def test_a_response_cache_starts_the_server_with_one(tmp_path: Path) -> None:
    """A model that asks for the response cache: its config enables it, and every file that starts tritonserver
    gives the server a cache (without one, tritonserver serves the model uncached)."""
    from ruamel.yaml import YAML

    from compiler.deploy.needs import server_needs

    path = tmp_path / "models.yaml"
    path.write_text("models:\n  - name: m\n    source: {python: 'tiny_models:affine'}\n    max_batch_size: 4\n"
                    "    inputs: [{name: x, dtype: FP32, dims: [4]}]\n    response_cache: true\n")
    loaded = load_manifest(path)
    assert build_config(loaded.manifest.models[0], []).response_cache.enable
    assert server_needs(loaded).arguments == ["--cache-config=local,size=268435456"]
    assert dockerfile(loaded).rstrip().splitlines()[-1].endswith('"--cache-config=local,size=268435456"]')
    command = YAML(typ="safe").load(compose(loaded))["services"]["tritonserver"]["command"]
    assert command[-1] == "--cache-config=local,size=268435456"
    assert not server_needs(MANIFEST).arguments  # the committed manifest asks for none


def test_container_files_follow_the_manifest() -> None:
    """Dockerfile and docker-compose.yml are committed; they must match the manifest."""
    assert (ROOT / "Dockerfile").read_text() == dockerfile(MANIFEST)
    assert (ROOT / "docker-compose.yml").read_text() == compose(MANIFEST)
    assert f"FROM nvcr.io/nvidia/tritonserver:{MANIFEST.manifest.triton_version}-py3" in dockerfile(MANIFEST)
    # a tritonserver that exits (a model that aborts ends it) is started again, and its health is its readiness
    from ruamel.yaml import YAML

    service = YAML(typ="safe").load(compose(MANIFEST))["services"]["tritonserver"]
    assert service["restart"] == "unless-stopped"
    assert "localhost:8000/v2/health/ready" in service["healthcheck"]["test"]


def test_version_policy_names_the_built_version_and_the_kept_ones() -> None:
    def policy(kind: str) -> Any:
        return build_config(_spec(version=3, keep_versions=1, version_policy=kind), [], kept=[1]).version_policy

    assert list(policy("specific").specific.versions) == [1, 3]  # each served version named
    assert policy("latest").latest.num_versions == 2  # the newest two folders: the built one and the kept one
    assert policy("all").HasField("all")
    assert list(build_config(_spec(version=2), []).version_policy.specific.versions) == [2]  # nothing kept
