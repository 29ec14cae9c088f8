"""Overload: a model offered more than it serves keeps its queue policy's bound (soak --overload), against the real
tritonserver; and without a policy, every wait grows."""

from __future__ import annotations

import pytest

from compiler.verify.overload import SHED, overload
from tests.helpers import Project, run_cli

pytestmark = pytest.mark.tritonserver

MANIFEST = """
models:
  - name: slow
    source: {{python: "tiny_models:slow"}}
    max_batch_size: 4
    inputs: [{{name: x, dtype: FP32, dims: [1]}}]
    dynamic_batching: {{preferred_batch_size: [1], latency_budget_ms: {budget}}}
    instance_group: [{{kind: KIND_CPU}}]
    parameters: {{INTRA_OP_THREAD_COUNT: 1}}     # one thread: its execution time is the product's, steady
"""
BUDGET_MS = 400
#: Requests sent at once: well past what the queue holds, however fast the machine (the client sends about 100 a
#: second, the model serves about 37).
BURST = 400


@pytest.mark.parametrize("budget", [BUDGET_MS, 0], ids=["with a queue policy", "without one"])
def test_a_burst_past_capacity_is_shed_and_what_is_admitted_waits_at_most_the_budget(budget: int,
                                                                                    project: Project) -> None:
    """BURST requests at once, whatever the machine's speed more than the queue (its max_queue_size is the budget over
    tens of milliseconds an execution): the excess refused at once with Triton's words, the admitted answered within
    the budget and their execution (and the client's threads on 2 cores), health checks answered throughout. Without
    a policy nothing is refused, and the last request waits the executions of all the requests before it."""
    built = project.built(MANIFEST.format(budget=budget))
    report = overload(built.manifest, built.output, "slow", burst=BURST)
    print(report.summary())
    assert not report.errors and report.wrong == 0 and not report.exits and report.overloaded
    assert report.health_ms and max(report.health_ms) < 1000  # the server answers its health checks throughout
    slowest = max(report.latencies_ms)
    if budget:
        assert report.refused > 0 and set(report.shed) <= set(SHED)  # Triton's own overload errors
        assert slowest < budget + 2000, report.summary()
    else:  # every request admitted, and the backlog makes them wait past the budget a policy would have kept;
        # by how much depends on how fast this machine's client sends against how fast the model serves (beside two
        # CPU-heavy jobs the client's 400 threads reached the server so slowly that the last waited 2.3 s)
        assert report.refused == 0 and len(report.latencies_ms) == BURST and slowest > BUDGET_MS, report.summary()
        assert sorted(report.latencies_ms)[BURST // 2] > BUDGET_MS, report.summary()  # most of them, not one


@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
def test_requests_the_policy_sheds_while_capacity_is_measured_are_part_of_the_load(project: Project) -> None:
    """Capacity is measured with the model's batches kept in flight. Under a budget shorter than one execution, the
    requests that arrive while one runs time out in the queue (503); each client thread goes on sending instead of
    dying with it (a thread's exception is an error here), and the capacity is what the executions served. 5 ms: at
    1 ms a lone request, the warm-up's, once timed out too on a busy machine (the warm-up is now tried again)."""
    built = project.built(MANIFEST.format(budget=5).replace("preferred_batch_size: [1], ", ""))
    report = overload(built.manifest, built.output, "slow", burst=8)
    print(report.summary())
    assert report.capacity > 0 and not report.errors and not report.exits


def test_the_capacity_of_a_model_that_merges_counts_each_execution_once(project: Project) -> None:
    """Capacity is requests over the instance's time. Triton's per-request statistics count a batch's time once for
    each of its requests, so capacity read from them is executions per second, a batch's worth too low, and --overload
    FACTOR offered less than FACTOR times what the model serves. The instance's busy time within the measurement is at
    most its length, so capacity read right is never below the rate answered meanwhile, however busy the machine."""
    built = project.built(MANIFEST.format(budget=0).replace("preferred_batch_size: [1], ", ""))
    report = overload(built.manifest, built.output, "slow", burst=8)
    print(report.summary())
    assert not report.errors and not report.exits
    assert report.capacity >= report.served_while_measured > 0, report.summary()


def test_an_overload_this_client_cannot_offer_fails_and_says_so(project: Project) -> None:
    """A model that executes a request in well under a millisecond serves thousands a second, far more than one Python
    client on the same cores sends: soak --overload shows no bound then, and fails saying what to do instead."""
    built = project.built("""
models:
  - name: affine
    source: {python: "tiny_models:affine"}
    max_batch_size: 8
    inputs: [{name: x, dtype: FP32, dims: [4]}]
    dynamic_batching: {}
""")
    result = run_cli("soak", "--repository", str(built.output), "--model", "affine", "--overload", "2", "--seconds", "1")
    assert result.code != 0, result.out + result.err
    assert "NO OVERLOAD: this client sent" in result.out and "perf_analyzer -m affine --request-rate-range" in result.out
