"""Soak: many requests at high concurrency, HTTP and gRPC mixed, every answer checked.

Expected answers come from eager PyTorch, computed once for a small pool of
inputs; each request picks one from the pool, so every response is compared.
The server's memory (tritonserver and its Python stubs) is read before and after.

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

from compiler.backend.pytorch import binding_rules as rules
from compiler.client.requests import infer_inputs
from compiler.errors import Problem, UserError
from compiler.export.adapt import adapted
from compiler.export.binding import bind
from compiler.export.examples import Plan, make_inputs, plans_for
from compiler.export.proof import flatten, mismatch
from compiler.manifest import load_manifest
from compiler.repository import layout
from compiler.server.process import TritonProcess
from compiler.server.session import embedded_server
from compiler.sources import load_source
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
    latencies_ms: list[float] = field(default_factory=list)
    rss_before_mb: float = 0.0
    rss_after_mb: float = 0.0
    by_protocol: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors and self.wrong == 0

    def percentile(self, q: float) -> float:
        data = sorted(self.latencies_ms)
        return data[min(len(data) - 1, int(q * len(data)))] if data else 0.0

    def summary(self) -> str:
        mean = statistics.fmean(self.latencies_ms) if self.latencies_ms else 0.0
        return (f"{self.model}: {self.requests} requests at concurrency {self.concurrency} "
                f"({', '.join(f'{k} {v}' for k, v in sorted(self.by_protocol.items()))}) in {self.seconds:.1f} s "
                f"= {self.requests / self.seconds:.0f} req/s; latency mean {mean:.1f} ms, p50 {self.percentile(0.5):.1f}, "
                f"p99 {self.percentile(0.99):.1f}; errors {len(self.errors)}, wrong answers {self.wrong}; server RSS "
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


def soak(manifest: Path, repository: Path, model_name: str, requests: int = 20000, concurrency: int = 16,
         progress: Callable[[int], None] = lambda _: None, seed: int = 0, allow_paths: Sequence[Path] = ()) -> SoakReport:
    loaded = load_manifest(manifest)
    model = next((m for m in loaded.manifest.models if m.name == model_name), None)
    if model is None:
        raise UserError(Problem(f"no model '{model_name}' in {manifest}", hint="name one of the manifest's models"))
    eager = load_source(model, loaded.directory, allow_paths)
    binding = bind(model, eager)
    eager, _ = adapted(eager, binding, make_inputs(model, plans_for(model)[0]))  # as the build served it
    config = parse_text(layout.config_file(Path(repository) / model.name).read_text())
    base = plans_for(model)[0]
    pool = _pool(model, eager, binding, base)
    with embedded_server(Path(repository)) as (server, _):
        assert server.pid is not None
        _warm(server, model, config, pool)
        report = SoakReport(model.name, requests, concurrency, 0.0, rss_before_mb=server_rss_mb(server.pid))
        _drive(server, model, config, pool, report, progress, seed)
        report.rss_after_mb = server_rss_mb(server.pid)
    return report


def _pool(model: Any, eager: Any, binding: Any, base: Plan) -> list[tuple[dict[str, Any], list[Any]]]:
    import torch

    pool = []
    with torch.no_grad():
        for number in range(POOL):
            inputs = make_inputs(model, Plan(f"soak {number}", 1 if base.batch else None, base.sizes, seed=500 + number))
            pool.append(({k: v.numpy() for k, v in inputs.items()}, flatten(binding.call(eager, inputs))))
    return pool


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


def _drive(server: TritonProcess, model: Any, config: Any, pool: list[Any], report: SoakReport,
           progress: Callable[[int], None], seed: int) -> None:
    import torch
    import tritonclient.grpc as grpcclient
    import tritonclient.http as httpclient

    _, index = rules.bind_outputs([o.name for o in config.output])
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
            arrays, expected = pool[rng.randrange(len(pool))]
            module, client = (httpclient, http) if protocol == "http" else (grpcclient, grpc)
            started = time.perf_counter()
            try:
                result = client.infer(model.name, infer_inputs(module, model, arrays))
                elapsed = (time.perf_counter() - started) * 1000
                served: list[Any] = [None] * len(config.output)
                for out in config.output:
                    value = torch.from_numpy(result.as_numpy(out.name).copy())
                    target = expected[index[out.name]]
                    served[index[out.name]] = value.reshape(target.shape) if value.numel() == target.numel() else value
                wrong = mismatch(model, expected, served) is not None
            except Exception as err:
                with lock:
                    report.errors.append(f"{protocol}: {str(err).splitlines()[0][:200]}")
                continue
            with lock:
                report.latencies_ms.append(elapsed)
                report.by_protocol[protocol] = report.by_protocol.get(protocol, 0) + 1
                report.wrong += wrong
                done = len(report.latencies_ms) + len(report.errors)
            progress(done)

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(report.concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report.seconds = time.perf_counter() - started
