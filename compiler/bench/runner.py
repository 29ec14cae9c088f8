"""Measure: eager PyTorch in-process, our served repository over HTTP and gRPC at several
concurrencies, PyTriton serving the same TorchScript, and the build against raw tracing."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compiler.bench.load import Measurement, closed_loop
from compiler.client.requests import infer_inputs
from compiler.export.binding import bind
from compiler.export.examples import Plan, make_inputs, plans_for
from compiler.manifest import ModelSpec, load_manifest
from compiler.server.ports import Ports
from compiler.server.session import embedded_server
from compiler.sources import load_source

Tick = Callable[[], None]


@dataclass
class ModelBench:
    name: str
    max_batch_size: int
    eager_latency: Measurement | None = None
    eager_batched: Measurement | None = None
    served: list[Measurement] = field(default_factory=list)
    pytriton: Measurement | None = None  # at the highest concurrency
    pytriton_c1: Measurement | None = None
    pytriton_error: str | None = None


@dataclass
class BuildBench:
    full_build_s: float
    raw_trace_s: float
    noop_build_s: float


@dataclass
class BenchResults:
    models: list[ModelBench]
    build: BuildBench | None
    seconds_per_cell: float


def _requester(protocol: str, url: str, model: ModelSpec, arrays: dict[str, Any]) -> Callable[[], Callable[[], Any]]:
    def make() -> Callable[[], Any]:
        if protocol == "http":
            import tritonclient.http as module
        else:
            import tritonclient.grpc as module  # type: ignore[no-redef]
        client = module.InferenceServerClient(url)
        items = infer_inputs(module, model, arrays)
        return lambda: client.infer(model.name, items)

    return make


def _eager(model: ModelSpec, module: Any, order: list[str], batch: int, seconds: float, tick: Tick) -> Measurement:
    import torch

    base = plans_for(model)[0]
    inputs = make_inputs(model, Plan("bench", batch if model.max_batch_size else None, base.sizes, seed=7))
    args = [inputs[n] for n in order]

    def make() -> Callable[[], Any]:
        def call() -> Any:
            with torch.inference_mode():
                return module(*args)

        return call

    label = f"eager batch {batch}"
    return closed_loop(label, make, 1, seconds, samples_per_request=batch if model.max_batch_size else 1, tick=tick)


def _wait_http(url: str, path: str, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise TimeoutError(f"the server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"http://{url}{path}", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url}{path} not ready in {timeout:.0f} s")


def run_bench(manifest: Path, repository: Path, names: list[str] | None = None, seconds: float = 6.0,
              concurrencies: tuple[int, ...] = (1, 4, 16), with_pytriton: bool = True, with_build: bool = True,
              tick: Tick = lambda: None) -> BenchResults:
    import torch

    loaded = load_manifest(manifest)
    chosen = [m for m in loaded.manifest.models if not names or m.name in names]
    benches: list[ModelBench] = []
    references = {}
    for model in chosen:
        module = load_source(model, loaded.directory)
        order = bind(model, module).order
        bench = ModelBench(model.name, model.max_batch_size)
        bench.eager_latency = _eager(model, module, order, 1, seconds, tick)
        if model.max_batch_size > 1:
            bench.eager_batched = _eager(model, module, order, model.max_batch_size, seconds, tick)
        base = plans_for(model)[0]
        inputs = make_inputs(model, Plan("bench", 1 if model.max_batch_size else None, base.sizes, seed=7))
        references[model.name] = {k: v.numpy() for k, v in inputs.items()}
        benches.append(bench)
        del module
    torch.set_num_threads(torch.get_num_threads())

    with embedded_server(repository) as (server, _):
        for model, bench in zip(chosen, benches):
            for protocol in ("http", "grpc"):
                url = server.http_url if protocol == "http" else server.grpc_url
                for concurrency in concurrencies:
                    bench.served.append(closed_loop(f"served {protocol} c{concurrency}",
                                                    _requester(protocol, url, model, references[model.name]),
                                                    concurrency, seconds, tick=tick))

    if with_pytriton:
        for model, bench in zip(chosen, benches):
            try:
                bench.pytriton_c1, bench.pytriton = _pytriton(repository / model.name, model, references[model.name],
                                                              (1, max(concurrencies)), seconds, tick)
            except PyTritonUnavailable as err:
                bench.pytriton_error = str(err)
    every = [m.name for m in loaded.manifest.models]  # the build always builds them all: time the same set
    build = _build_times(manifest, loaded.directory, every) if with_build else None
    return BenchResults(benches, build, seconds)


class PyTritonUnavailable(RuntimeError):
    pass


#: PyTriton's shared-memory tensor store starts a multiprocessing manager inside the Python backend stub, and
#: the wheel's 3.11 stub (an older 3.11 runtime than this stdlib) fails there ('_thread.RLock' object has no
#: attribute '_recursion_count'). PyTriton's own switch selects its base64 transport instead; the report says so.
PYTRITON_ENV = {"PYTRITON_NO_TENSORSTORE": "1"}


def _pytriton(folder: Path, model: ModelSpec, arrays: dict[str, Any], concurrencies: tuple[int, int], seconds: float,
              tick: Tick) -> tuple[Measurement, Measurement]:
    ports = Ports.free()
    log = tempfile.NamedTemporaryFile(prefix="pytriton-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen([sys.executable, "-m", "compiler.bench.pytriton_server", str(folder), model.name,
                                str(ports.http), str(ports.grpc), str(ports.metrics)],
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                               env={**os.environ, **PYTRITON_ENV})
    try:
        url = f"127.0.0.1:{ports.http}"
        try:
            _wait_http(url, f"/v2/models/{model.name}/ready", 120, process)
        except TimeoutError as err:
            lines = [ln.strip() for ln in Path(log.name).read_text(errors="replace").splitlines() if "Error" in ln]
            raise PyTritonUnavailable(f"{err}; its log ({log.name}) ends with: {lines[-1] if lines else 'nothing'}") from None
        low, high = (closed_loop(f"pytriton http c{c}", _requester("http", url, model, arrays), c, seconds, tick=tick)
                     for c in concurrencies)
        return low, high
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)


_RAW = r"""
import sys, torch
from pathlib import Path
from compiler.manifest import load_manifest
from compiler.sources import load_source
from compiler.export.binding import bind
from compiler.export.examples import make_inputs, plans_for
loaded = load_manifest(Path(sys.argv[1]))
out = Path(sys.argv[2])
for model in loaded.manifest.models:
    if model.name not in sys.argv[3:]:
        continue
    module = load_source(model, loaded.directory)
    order = bind(model, module).order
    example = make_inputs(model, plans_for(model)[0])
    with torch.no_grad():
        traced = torch.jit.trace(module, tuple(example[n] for n in order), strict=False)
    traced.save(str(out / f"{model.name}.pt"))
"""


def _timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def _build_times(manifest: Path, base: Path, names: list[str]) -> BuildBench:
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "models"
        full = _timed([sys.executable, "-m", "compiler", "build", "--manifest", str(manifest), "--output", str(output)])
        noop = min(_timed([sys.executable, "-m", "compiler", "build", "--manifest", str(manifest), "--output",
                           str(output)]) for _ in range(3))
        raw = _timed([sys.executable, "-c", _RAW, str(manifest), folder, *names])
    return BuildBench(full, raw, noop)
