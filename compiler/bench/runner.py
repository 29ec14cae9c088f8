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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compiler.bench.load import Measurement, closed_loop
from compiler.client.requests import infer_inputs
from compiler.export.adapt import adapted
from compiler.export.binding import Binding, bind
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
    rounds: int = 1


@dataclass
class _Cell:
    """One measured configuration; every round adds a window to the same Measurement."""

    label: str
    make_caller: Callable[[], Callable[[], Any]]
    concurrency: int
    seconds: float
    samples_per_request: int = 1
    measurement: Measurement | None = None

    def run(self, warmup: int, tick: Tick) -> Measurement:
        window = closed_loop(self.label, self.make_caller, self.concurrency, self.seconds, self.samples_per_request,
                             warmup=warmup, tick=tick)
        if self.measurement is None:
            self.measurement = window
        else:
            self.measurement.absorb(window)
        return self.measurement


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


def _eager_caller(model: ModelSpec, module: Any, binding: Binding, batch: int) -> Callable[[], Callable[[], Any]]:
    import torch

    base = plans_for(model)[0]
    inputs = make_inputs(model, Plan("bench", batch if model.max_batch_size else None, base.sizes, seed=7))

    def make() -> Callable[[], Any]:
        def call() -> Any:
            with torch.inference_mode():
                return binding.call(module, inputs)

        return call

    return make


def _probe_ms(make_caller: Callable[[], Callable[[], Any]]) -> float:
    """One warm call's latency: sizes the cells so that a slow model still completes several batches in each."""
    call = make_caller()
    call()
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


#: A cell lasts long enough for this many requests per client thread (at the eager latency of the batch the
#: server will form), so that slow models are not measured over two or three batches.
REQUESTS_PER_THREAD = 5


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
              rounds: int = 3, tick: Tick = lambda: None) -> BenchResults:
    """Per model, eager PyTorch, our server and PyTriton are all up at once and measured in `rounds` interleaved
    rounds (every cell once per round, windows added up), so that drift on a shared machine falls on all alike."""
    loaded = load_manifest(manifest)
    chosen = [m for m in loaded.manifest.models if not names or m.name in names]
    benches: list[ModelBench] = []
    with embedded_server(repository) as (server, _):
        for model in chosen:
            benches.append(_bench_model(model, loaded.directory, repository, server.http_url, server.grpc_url,
                                        seconds, concurrencies, with_pytriton, rounds, tick))
    every = [m.name for m in loaded.manifest.models]  # the build always builds them all: time the same set
    build = _build_times(manifest, loaded.directory, every) if with_build else None
    return BenchResults(benches, build, seconds, rounds)


def _bench_model(model: ModelSpec, base: Path, repository: Path, http_url: str, grpc_url: str, seconds: float,
                 concurrencies: tuple[int, ...], with_pytriton: bool, rounds: int, tick: Tick) -> ModelBench:
    module = load_source(model, base)
    binding = bind(model, module)
    module, _ = adapted(module, binding, make_inputs(model, plans_for(model)[0]))  # as the build served it
    bench = ModelBench(model.name, model.max_batch_size)
    plan = plans_for(model)[0]
    arrays = {k: v.numpy() for k, v in
              make_inputs(model, Plan("bench", 1 if model.max_batch_size else None, plan.sizes, seed=7)).items()}
    largest = max(model.max_batch_size, 1)
    single = _eager_caller(model, module, binding, 1)
    batched = _eager_caller(model, module, binding, largest) if largest > 1 else None
    single_ms = _probe_ms(single)
    batched_ms = _probe_ms(batched) if batched else single_ms

    def window(expected_ms: float) -> float:
        return max(seconds, REQUESTS_PER_THREAD * expected_ms / 1000)

    def cell_seconds(concurrency: int) -> float:
        formed = min(concurrency, largest)  # the batch the dynamic batcher can form from C one-example requests
        return window(max(single_ms, batched_ms * formed / largest))

    eager_single = _Cell("eager batch 1", single, 1, window(single_ms))
    cells = [eager_single]
    eager_batched = None
    if batched:
        eager_batched = _Cell(f"eager batch {largest}", batched, 1, window(batched_ms), samples_per_request=largest)
        cells.append(eager_batched)
    served = [_Cell(f"served {protocol} c{c}", _requester(protocol, url, model, arrays), c, cell_seconds(c))
              for protocol, url in (("http", http_url), ("grpc", grpc_url)) for c in concurrencies]
    cells += served
    with contextlib.ExitStack() as stack:
        pytriton: list[_Cell] = []
        if with_pytriton:
            try:
                url = stack.enter_context(_pytriton_server(repository / model.name, model))
                pytriton = [_Cell(f"pytriton http c{c}", _requester("http", url, model, arrays), c, cell_seconds(c))
                            for c in (1, max(concurrencies))]
            except PyTritonUnavailable as err:
                bench.pytriton_error = str(err)
        cells += pytriton
        for index in range(rounds):
            for cell in cells:
                cell.run(warmup=3 if index == 0 else 1, tick=tick)
    bench.eager_latency = eager_single.measurement
    bench.eager_batched = eager_batched.measurement if eager_batched else None
    bench.served = [c.measurement for c in served if c.measurement]
    if pytriton:
        bench.pytriton_c1, bench.pytriton = pytriton[0].measurement, pytriton[1].measurement
    return bench


class PyTritonUnavailable(RuntimeError):
    pass


#: PyTriton's shared-memory tensor store starts a multiprocessing manager inside the Python backend stub, and
#: the wheel's 3.11 stub (an older 3.11 runtime than this stdlib) fails there ('_thread.RLock' object has no
#: attribute '_recursion_count'). PyTriton's own switch selects its base64 transport instead; the report says so.
PYTRITON_ENV = {"PYTRITON_NO_TENSORSTORE": "1"}


@contextlib.contextmanager
def _pytriton_server(folder: Path, model: ModelSpec) -> Iterator[str]:
    """PyTriton serving the model in its own process and tritonserver; yields its HTTP address."""
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
        yield url
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
from compiler.export.binding import Binding, bind
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
