"""Dynamic batching only where stacking requests cannot change anyone's answer."""

from __future__ import annotations

import json

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


def test_a_model_that_mixes_the_batch_is_never_merged_and_the_build_says_why(project: Project) -> None:
    """Its requests still queue, one per execution (preferred_batch_size [1], no delay), under a queue policy that
    bounds their wait: the default budget of 5 s, and as many requests as fit in it at the measured batch-1 time."""
    code, out, err = _build(project, "mixes_the_batch")
    assert code == 0, err
    batching = _config(project).dynamic_batching  # type: ignore[attr-defined]
    assert list(batching.preferred_batch_size) == [1] and batching.max_queue_delay_microseconds == 0
    assert "requests are not merged: example 0 alone and in a batch of 4 differ" in out
    record = json.loads((project.output / "m" / "build.json").read_text())
    assert record["dynamic_batching"] == {"config.pbtxt": "queue"}
    policy = batching.default_queue_policy
    took = record["execution_ms"]["1"]
    assert policy.default_timeout_microseconds == 5_000_000 and policy.timeout_action == 0  # REJECT
    assert policy.max_queue_size == max(16, 8, int(5000 // took)) and took > 0  # MIN_QUEUE_SIZE, max_batch_size


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


def test_no_batch_dim_no_queue_and_max_batch_size_one_is_never_merged(project: Project) -> None:
    code, _, err = _build(project, "mixes_the_batch", max_batch_size=0)
    assert code == 0, err
    assert not _config(project).HasField("dynamic_batching")  # type: ignore[attr-defined]
    code, _, err = _build(project, "mixes_the_batch", max_batch_size=1)
    assert code == 0, err
    assert list(_config(project).dynamic_batching.preferred_batch_size) == [1]  # type: ignore[attr-defined]


def test_a_queue_policy_given_is_written_as_it_is_and_a_budget_of_0_writes_none(project: Project) -> None:
    policy = "{max_queue_size: 7, default_timeout_microseconds: 250000, timeout_action: DELAY}"
    assert _build(project, "affine", f"    dynamic_batching: {{default_queue_policy: {policy}, priority_levels: 2, "
                  "default_priority_level: 2}")[0] == 0
    batching = _config(project).dynamic_batching  # type: ignore[attr-defined]
    assert (batching.default_queue_policy.max_queue_size, batching.default_queue_policy.default_timeout_microseconds,
            batching.default_queue_policy.timeout_action) == (7, 250000, 1)  # DELAY
    assert (batching.priority_levels, batching.default_priority_level) == (2, 2)
    assert _build(project, "affine", "    dynamic_batching: {latency_budget_ms: 0}")[0] == 0
    assert not _config(project).dynamic_batching.HasField("default_queue_policy")  # type: ignore[attr-defined]
