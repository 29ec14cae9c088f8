"""Soak: many requests at high concurrency, HTTP and gRPC mixed, every answer checked.

Expected answers come from eager PyTorch, computed once for a small pool of
inputs; each request picks one from the pool, so every response is compared.
A share of the requests is hostile (export/hostile.py: values outside an index's
range, NaN, sizes out of bounds, wrong dtypes...): each must be answered as its
case says, and the good ones beside them correctly or refused with a guard's words:
NVIDIA's backend answers one exception with one error for every request of the
execution, so a good request merged with a refused one is refused with it
(counted apart, never a wrong answer). The server's memory (tritonserver and
its Python stubs) is read before and after; that it still runs is checked.

    report = soak(Path("models.yaml"), Path("Triton/models"), "bert", requests=20000, concurrency=16)
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compiler import datatypes
from compiler.client.requests import infer_inputs
from compiler.datatypes import Arrays
from compiler.errors import Problem, UserError
from compiler.export.examples import Plan, make_inputs, plans_for
from compiler.export.guards import REFUSED
from compiler.export.proof import mismatch
from compiler.export.reference import EagerReference
from compiler.manifest import load_manifest
from compiler.repository import layout
from compiler.repository.record import read_record
from compiler.server.process import TritonProcess
from compiler.server.session import embedded_server
from compiler.triton_config import parse_text

POOL = 32


@dataclass
class SoakReport:
    model: str
    requests: int
    concurrency: int
    seconds: float
    errors: list[str] = field(default_factory=list)
    wrong: int = 0
    #: good requests refused with a guard's words: merged into one execution with a hostile one
    collateral: int = 0
    hostile: int = 0  # hostile requests sent
    hostile_wrong: list[str] = field(default_factory=list)  # answered otherwise than their case says
    deaths: list[str] = field(default_factory=list)  # tritonserver's exit, or Python stubs that died
    latencies_ms: list[float] = field(default_factory=list)
    rss_before_mb: float = 0.0
    rss_after_mb: float = 0.0
    by_protocol: dict[str, int] = field(default_factory=dict)
    loaded: list[str] = field(default_factory=list)  # the models the soak's server loaded: the soaked one alone

    @property
    def ok(self) -> bool:
        return not self.errors and self.wrong == 0 and not self.hostile_wrong and not self.deaths

    @property
    def answered(self) -> int:
        return len(self.latencies_ms) + len(self.errors) + self.collateral + self.hostile

    def percentile(self, q: float) -> float:
        data = sorted(self.latencies_ms)
        return data[min(len(data) - 1, int(q * len(data)))] if data else 0.0

    def summary(self) -> str:
        mean = statistics.fmean(self.latencies_ms) if self.latencies_ms else 0.0
        return (f"{self.model}: {self.requests} requests at concurrency {self.concurrency} "
                f"({', '.join(f'{k} {v}' for k, v in sorted(self.by_protocol.items()))}) in {self.seconds:.1f} s "
                f"= {self.requests / self.seconds:.0f} req/s; latency mean {mean:.1f} ms, p50 {self.percentile(0.5):.1f}, "
                f"p99 {self.percentile(0.99):.1f}; errors {len(self.errors)}, wrong answers {self.wrong}; hostile "
                f"{self.hostile} ({len(self.hostile_wrong)} not answered as documented), good ones refused beside "
                f"them {self.collateral}; lost "
                f"{self.requests - self.answered}; processes died {len(self.deaths)}; server RSS "
                f"{self.rss_before_mb:.0f} MB before, {self.rss_after_mb:.0f} MB after")


def server_rss_mb(pid: int) -> float:
    """Resident memory of tritonserver and every process it started (its stubs)."""
    total = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            status = (proc / "status").read_text()
            stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pgid = int(stat[2])
        if int(proc.name) == pid or pgid == pid:
            for line in status.splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


def load_subject(manifest: Path, repository: Path, model_name: str,
                 allow_paths: Sequence[Path] = ()) -> tuple[Any, EagerReference, Any]:
    """The model a soak or an overload run drives: its manifest entry, its eager reference and its built config;
    a UserError where the manifest has no such model."""
    loaded = load_manifest(manifest)
    model = next((m for m in loaded.manifest.models if m.name == model_name), None)
    if model is None:
        raise UserError(Problem(f"no model '{model_name}' in {manifest}", hint="name one of the manifest's models"))
    reference = EagerReference.load(model, loaded.directory, allow_paths)
    return model, reference, parse_text(layout.config_file(Path(repository) / model.name).read_text())


def soak(manifest: Path, repository: Path, model_name: str, requests: int = 20000, concurrency: int = 16,
         progress: Callable[[int], None] = lambda _: None, seed: int = 0, allow_paths: Sequence[Path] = (),
         hostile_share: float = 0.05) -> SoakReport:
    """`hostile_share`: the part of the requests that are hostile (0 sends none)."""
    model, reference, config = load_subject(manifest, repository, model_name, allow_paths)
    base = plans_for(model)[0]
    pool = _pool(model, reference, base)
    hostile = _hostile_pool(model, reference, Path(repository)) if hostile_share > 0 else []
    with embedded_server(Path(repository), only=[model.name]) as (server, served):
        assert server.pid is not None
        _warm(server, model, config, pool)
        report = SoakReport(model.name, requests, concurrency, 0.0, rss_before_mb=server_rss_mb(server.pid),
                            loaded=[m.name for m in served])
        _drive(server, model, config, pool, hostile, hostile_share, reference.positions([o.name for o in config.output]),
               report, progress, seed)
        report.rss_after_mb = server_rss_mb(server.pid)
        report.deaths = [d.line() for d in server.watch.deaths] if server.watch is not None else []
        report.deaths += [e.line() for e in server.supervisor.exits] if server.supervisor is not None else []
        if not server.running():
            report.deaths.append(f"tritonserver is down ({server.returncode})")
    return report


def _pool(model: Any, reference: EagerReference, base: Plan) -> list[tuple[Arrays, list[Any]]]:
    pool = []
    for number in range(POOL):
        inputs = make_inputs(model, Plan(f"soak {number}", 1 if base.batch else None, base.sizes, seed=500 + number))
        pool.append(({k: datatypes.to_numpy(v) for k, v in inputs.items()}, reference.outputs(inputs)))
    return pool


def _hostile_pool(model: Any, reference: EagerReference, repository: Path) -> list[tuple[Any, Any]]:
    """(case, eager's outputs or the exception eager raises) for every hostile case of the model."""
    from compiler.export.guards import Guards
    from compiler.export.hostile import hostile_cases, triton_cases

    guards = Guards.from_record((read_record(repository / model.name) or {}).get("guards"))
    out = []
    for case in hostile_cases(model, guards, "aoti" if model.export == "aoti" else "torchscript") + triton_cases(model):
        try:
            expected: Any = reference.outputs(case.inputs)
        except Exception as err:
            expected = err
        out.append((case, expected))
    return out


def _clients(server: TritonProcess) -> tuple[Any, Any]:
    import tritonclient.grpc as grpcclient
    import tritonclient.http as httpclient

    return (httpclient.InferenceServerClient(server.http_url, network_timeout=120),
            grpcclient.InferenceServerClient(server.grpc_url))


def _warm(server: TritonProcess, model: Any, config: Any, pool: list[Any]) -> None:
    import tritonclient.http as httpclient

    http, _ = _clients(server)
    for arrays, _ in pool[:4]:
        http.infer(model.name, infer_inputs(httpclient, model, arrays))


def _served(result: Any, config: Any, expected: list[Any], index: dict[str, int]) -> list[Any]:

    served: list[Any] = [None] * len(config.output)
    for out in config.output:
        value = datatypes.to_torch(result.as_numpy(out.name))
        target = expected[index[out.name]]
        served[index[out.name]] = value.reshape(target.shape) if value.numel() == target.numel() else value
    return served


def _hostile_verdict(case: Any, expected: Any, outcome: Any, model: Any, config: Any, index: dict[str, int]) -> str | None:
    from compiler.export.hostile import EAGER, REFUSED

    if case.expect == REFUSED:
        return None if isinstance(outcome, Exception) else "answered; it must be refused"
    if case.expect != EAGER or isinstance(expected, Exception):
        return None if case.expect != EAGER or isinstance(outcome, Exception) else "answered where eager raises"
    if isinstance(outcome, Exception):
        return "refused where eager PyTorch answers"
    return mismatch(model, expected, _served(outcome, config, expected, index))


def _drive(server: TritonProcess, model: Any, config: Any, pool: list[Any], hostile: list[Any], share: float,
           index: dict[str, int], report: SoakReport, progress: Callable[[int], None], seed: int) -> None:
    import tritonclient.grpc as grpcclient
    import tritonclient.http as httpclient

    lock = threading.Lock()
    counter = iter(range(report.requests))

    def worker(number: int) -> None:
        rng = random.Random(seed * 1000 + number)
        http, grpc = _clients(server)
        while True:
            with lock:
                sent = next(counter, None)
            if sent is None:
                return
            protocol = "http" if rng.random() < 0.5 else "grpc"
            module, client = (httpclient, http) if protocol == "http" else (grpcclient, grpc)
            if hostile and rng.random() < share:
                case, expected = hostile[rng.randrange(len(hostile))]
                try:
                    outcome: Any = client.infer(model.name, infer_inputs(module, model, case.inputs, dict(case.datatypes)))
                except Exception as err:
                    outcome = err
                verdict = _hostile_verdict(case, expected, outcome, model, config, index)
                with lock:
                    report.hostile += 1
                    if verdict:
                        report.hostile_wrong.append(f"{protocol}: {case.label}: {verdict}")
                    done = report.answered
                progress(done)
                continue
            arrays, expected = pool[rng.randrange(len(pool))]
            started = time.perf_counter()
            try:
                result = client.infer(model.name, infer_inputs(module, model, arrays))
                elapsed = (time.perf_counter() - started) * 1000
                wrong = mismatch(model, expected, _served(result, config, expected, index)) is not None
            except Exception as err:
                with lock:
                    if hostile and any(mark in str(err) for mark in REFUSED):
                        report.collateral += 1
                    else:
                        report.errors.append(f"{protocol}: {str(err).splitlines()[0][:200]}")
                continue
            with lock:
                report.latencies_ms.append(elapsed)
                report.by_protocol[protocol] = report.by_protocol.get(protocol, 0) + 1
                report.wrong += wrong
                done = report.answered
            progress(done)

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(report.concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report.seconds = time.perf_counter() - started
