"""Overload: offer a model more requests than it can serve, and show the bound its queue policy keeps.

The model's capacity is measured first in the same server: requests sent closed loop (as many in flight as one
execution takes: max_batch_size where the batcher merges, else one per instance) for a few seconds, and the capacity
is what the server's own statistics say its executions take (the instances' time per execution, each execution
once, and requests per execution): the client's round trip does not count, and a busier machine measures a lower
capacity and is offered less. What the client was answered meanwhile is said beside it. Then
requests are offered open-loop at `factor` times that rate for `seconds`: each is sent on schedule whether the
earlier ones were answered or not, as independent clients would. Every answer is checked against eager PyTorch; a
refusal is sorted by Triton's words ("Exceeds maximum queue size", "Request timeout expired"); and the server's
health is asked four times a second throughout. With a queue policy, what is admitted is answered within the
budget and the excess is refused at once; without one, every wait grows with the load. The report says what this
client sent: where that was no faster than the capacity (one Python process on the server's cores sends a few hundred
requests a second), nothing was overloaded, and the report says so (`overloaded`).

    report = overload(Path("models.yaml"), Path("Triton/models"), "resnet", factor=3.0, seconds=10)
    report.summary()
"""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compiler.bench.stats import settled
from compiler.client.requests import infer_inputs
from compiler.datatypes import Sendable
from compiler.errors import Problem, UserError
from compiler.export.examples import Plan, make_inputs, plans_for
from compiler.export.proof import mismatch
from compiler.server.session import embedded_server
from compiler.verify.soak import load_subject

#: Triton's words for a request its queue policy refused.
SHED = ("Exceeds maximum queue size", "Request timeout expired")
#: How often the warm-up request before the capacity is measured may be shed before the shedding is the answer.
WARM_ATTEMPTS = 20


def was_shed(error: BaseException) -> bool:
    """Whether a failed request was refused by the model's queue policy (load shedding, as configured), not
    answered wrong: verify's bursts on a busy machine may exceed a slow model's latency budget."""
    return any(words in str(error) for words in SHED)


@dataclass
class OverloadReport:
    model: str
    capacity: float  # requests/s the instances can execute, measured in the same server
    offered: float  # requests/s offered
    seconds: float
    budget_ms: float | None  # the queue policy's timeout, or None without one
    max_queue_size: int
    latencies_ms: list[float] = field(default_factory=list)  # admitted requests, answered right
    shed: dict[str, int] = field(default_factory=dict)  # Triton's overload error -> count
    errors: list[str] = field(default_factory=list)  # any other failure
    wrong: int = 0
    burst: int | None = None  # requests sent at once instead of `offered` per second
    health_ms: list[float] = field(default_factory=list)
    exits: list[str] = field(default_factory=list)
    served_while_measured: float = 0.0  # requests/s answered while the capacity was measured (round trips included)
    sent: int = 0  # requests this client sent
    sending_s: float = 0.0  # from the first send to the last

    @property
    def sent_rate(self) -> float:
        return self.sent / self.sending_s if self.sending_s else 0.0

    @property
    def overloaded(self) -> bool:
        """Whether this client sent faster than the model serves. One Python client on the server's cores sends a few
        hundred requests a second, a burst's threads too (they start one after another while the model serves): a
        faster model is not overloaded by it."""
        return self.sent_rate > self.capacity

    def percentile(self, data: list[float], q: float) -> float:
        ordered = sorted(data)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0

    @property
    def refused(self) -> int:
        return sum(self.shed.values())

    def summary(self) -> str:
        policy = (f"queue policy: timeout {self.budget_ms:.0f} ms, max_queue_size {self.max_queue_size}"
                  if self.budget_ms else "no queue policy")
        offered = (f"a burst of {self.burst} requests" if self.burst else
                   f"offered {self.offered:.1f} req/s for {self.seconds:.0f} s") + \
            f", sent {self.sent} in {self.sending_s:.1f} s ({self.sent_rate:.1f} req/s)"
        return (f"{self.model}: capacity {self.capacity:.1f} req/s ({self.served_while_measured:.1f} answered while "
                f"it was measured), {offered} ({policy}); admitted {len(self.latencies_ms)}, latency p50 "
                f"{self.percentile(self.latencies_ms, 0.5):.0f} ms, p99 {self.percentile(self.latencies_ms, 0.99):.0f} "
                f"ms, max {max(self.latencies_ms, default=0):.0f} ms; refused {self.refused} "
                f"({', '.join(f'{k!r} {v}' for k, v in sorted(self.shed.items())) or 'none'}); other errors "
                f"{len(self.errors)}, wrong answers {self.wrong}; health checks max {max(self.health_ms, default=0):.0f} "
                f"ms; tritonserver exits {len(self.exits)}" + ("" if self.overloaded else self.no_overload()))

    def no_overload(self) -> str:
        return (f"; NO OVERLOAD: this client sent {self.sent_rate:.1f} req/s, no more than the capacity, so nothing here "
                "shows the bound: offer the load from more processes or another machine, e.g. perf_analyzer -m "
                f"{self.model} --request-rate-range {3 * self.capacity:.0f}")


def overload(manifest: Path, repository: Path, model_name: str, factor: float = 3.0, seconds: float = 10.0,
             allow_paths: Sequence[Path] = (), burst: int | None = None) -> OverloadReport:
    """`burst`: send that many requests at once instead of a rate (an overload whatever the machine's speed)."""
    model, reference, config = load_subject(manifest, repository, model_name, allow_paths)
    policy = config.dynamic_batching.default_queue_policy
    base = plans_for(model)[0]
    arrays = make_inputs(model, Plan("overload", 1 if model.max_batch_size else None, base.sizes, seed=700))
    expected = reference.outputs(arrays)
    positions = reference.positions([o.name for o in config.output])
    merges = config.HasField("dynamic_batching") and list(config.dynamic_batching.preferred_batch_size) != [1]
    instances = max(1, sum(g.count for g in config.instance_group))
    in_flight = config.max_batch_size * instances if merges else instances
    with embedded_server(Path(repository), only=[model.name]) as (server, _):
        capacity, served = _capacity(server, model, arrays, in_flight, instances)
        if capacity <= 0:
            raise UserError(Problem(f"'{model.name}' answered no request while its capacity was measured",
                                    model=model.name))
        report = OverloadReport(model.name, capacity, capacity * factor, seconds,
                                policy.default_timeout_microseconds / 1000 or None, policy.max_queue_size, burst=burst,
                                served_while_measured=served)
        _offer(server, model, config, arrays, expected, positions, report)
        report.exits = [e.line() for e in server.supervisor.exits] if server.supervisor is not None else []
    return report


def _client(server: Any) -> Any:
    import tritonclient.http as http

    return http.InferenceServerClient(server.http_url, network_timeout=120)


def _capacity(server: Any, model: Any, arrays: Sendable, in_flight: int, instances: int,
              seconds: float = 2.0) -> tuple[float, float]:
    """Requests per second the model's instances can execute: `in_flight` requests kept in flight for `seconds`, then
    requests over the instances' time, from Triton's statistics (each execution's time once, however many requests it
    merged; the round trip not counted). And the requests per second answered meanwhile, which it cannot be below."""
    import tritonclient.http as http

    with _client(server) as client:  # warm: under a short budget even a lone request may time out in the queue
        for attempt in range(WARM_ATTEMPTS):
            try:
                client.infer(model.name, infer_inputs(http, model, arrays))
                break
            except Exception as err:
                if not was_shed(err) or attempt == WARM_ATTEMPTS - 1:
                    raise
    before = settled(server.http_url, [model.name])[model.name]
    started = time.perf_counter()

    failures: list[str] = []

    def loop() -> None:
        with _client(server) as client:
            while time.perf_counter() - started < seconds:
                try:
                    client.infer(model.name, infer_inputs(http, model, arrays))
                except Exception as err:  # a request the queue policy sheds is part of the load: keep it in flight
                    if not was_shed(err):
                        failures.append(str(err).splitlines()[0][:200])
                        return

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(in_flight)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise UserError(Problem(f"'{model.name}' failed a request while its capacity was measured: {failures[0]}",
                                model=model.name))
    wall = time.perf_counter() - started
    spent = settled(server.http_url, [model.name])[model.name] - before
    served = spent.requests / wall
    if not spent.executions or not spent.occupied_ns:
        return 0.0, served
    return instances * spent.requests / (spent.occupied_ns / 1e9), served


def _offer(server: Any, model: Any, config: Any, arrays: Sendable, expected: list[Any],
           positions: dict[str, int], report: OverloadReport) -> None:
    import tritonclient.http as http

    from compiler import datatypes

    lock = threading.Lock()
    stop = threading.Event()

    def one() -> None:
        started = time.perf_counter()
        try:
            with _client(server) as client:  # closed in its own thread: gevent's hub is per thread
                result = client.infer(model.name, infer_inputs(http, model, arrays))
        except Exception as err:
            text = str(err)
            with lock:
                word = next((w for w in SHED if w in text), None)
                if word:
                    report.shed[word] = report.shed.get(word, 0) + 1
                else:
                    report.errors.append(text.splitlines()[0][:200])
            return
        elapsed = (time.perf_counter() - started) * 1000
        served = [None] * len(config.output)
        for out in config.output:
            served[positions[out.name]] = datatypes.to_torch(result.as_numpy(out.name))
        wrong = mismatch(model, expected, served) is not None
        with lock:
            report.latencies_ms.append(elapsed)
            report.wrong += wrong

    def health() -> None:
        while not stop.wait(0.25):
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(f"http://{server.http_url}/v2/health/ready", timeout=30):
                    pass
            except OSError:
                pass
            report.health_ms.append((time.perf_counter() - started) * 1000)

    watcher = threading.Thread(target=health, daemon=True)
    watcher.start()
    interval = 1.0 / report.offered
    threads = []
    begun = time.perf_counter()
    sent = 0
    while (sent < report.burst) if report.burst else (time.perf_counter() - begun < report.seconds):
        if not report.burst:
            time.sleep(max(0.0, begun + sent * interval - time.perf_counter()))
        thread = threading.Thread(target=one, daemon=True)
        thread.start()
        threads.append(thread)
        sent += 1
    sending_s = time.perf_counter() - begun
    for thread in threads:
        thread.join(timeout=300)
    stop.set()
    watcher.join(timeout=5)
    report.seconds = time.perf_counter() - begun
    report.sent, report.sending_s = sent, sending_s
