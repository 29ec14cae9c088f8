"""Dynamic batching only where stacking requests cannot change anyone's answer."""

from __future__ import annotations

import json

import pytest

from compiler.triton_config import parse_text
from tests.helpers import Project

ONE = """
models:
  - name: m
    source: {{python: "tiny_models:{factory}"}}
    max_batch_size: {max_batch_size}
    inputs: [{{name: INPUT__0, dtype: FP32, dims: [4]}}]
{extra}
"""


def _build(project: Project, factory: str, extra: str = "", max_batch_size: int = 8) -> tuple[int, str, str]:
    project.write(ONE.format(factory=factory, extra=extra, max_batch_size=max_batch_size))
    result = project.build()
    return result.code, result.out, result.err


def _config(project: Project, name: str = "config.pbtxt") -> object:
    return parse_text((project.output / "m" / name).read_text())


def test_a_batch_invariant_model_gets_dynamic_batching_without_asking(project: Project) -> None:
    code, out, err = _build(project, "affine")
    assert code == 0, err
    assert _config(project).HasField("dynamic_batching")  # type: ignore[attr-defined]
    record = json.loads((project.output / "m" / "build.json").read_text())
    assert record["batch_invariance"] == {"examples": 4, "failure": None}
    assert "batch invariance holds on 4 stacked examples" in err


def test_a_model_that_mixes_the_batch_is_served_without_batching_and_the_build_says_why(project: Project) -> None:
    code, out, err = _build(project, "mixes_the_batch")
    assert code == 0, err
    assert not _config(project).HasField("dynamic_batching")  # type: ignore[attr-defined]
    assert "no dynamic batching: example 0 alone and in a batch of 4 differ" in out
    record = json.loads((project.output / "m" / "build.json").read_text())
    assert record["dynamic_batching"] == {"config.pbtxt": False}


def test_asking_for_batching_a_model_that_mixes_the_batch_fails_at_that_line(project: Project) -> None:
    code, out, err = _build(project, "mixes_the_batch", "    dynamic_batching: {max_queue_delay_microseconds: 10}")
    assert code == 1
    assert "models.yaml:6" in err and "dynamic_batching was asked for, but batching changes the answers" in err
    assert not project.output.exists()


def test_true_asks_with_default_settings_and_false_turns_it_off(project: Project) -> None:
    assert _build(project, "affine", "    dynamic_batching: true")[0] == 0
    assert _config(project).dynamic_batching.max_queue_delay_microseconds == 0  # type: ignore[attr-defined]
    code, out, _ = _build(project, "mixes_the_batch", "    dynamic_batching: false")
    assert code == 0 and "no dynamic batching" not in out
    assert not _config(project).HasField("dynamic_batching")  # type: ignore[attr-defined]


def test_a_model_whose_output_batch_does_not_follow_the_input_is_refused(project: Project) -> None:
    code, _, err = _build(project, "drops_the_batch")
    assert code == 1
    assert "output 0 has shape" in err and "every output must lead with the batch dim" in err


@pytest.mark.parametrize("max_batch_size", [0, 1])
def test_no_proof_and_no_batching_below_two(project: Project, max_batch_size: int) -> None:
    code, _, err = _build(project, "mixes_the_batch", max_batch_size=max_batch_size)
    assert code == 0, err
    assert not _config(project).HasField("dynamic_batching")  # type: ignore[attr-defined]
