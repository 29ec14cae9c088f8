"""Measure: eager PyTorch in-process; our served repository with perf_analyzer, Triton's own load generator (the
commands the build writes to Triton/profiling/<model>/perf_analyzer.txt), over HTTP and gRPC at concurrency 1 to
16; the same models exported as TorchScript and served beside them; PyTriton serving the same model file; and the
build against the raw export.

Eager PyTorch is measured with our closed loop (load.py): perf_analyzer only measures servers.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shlex
import shutil
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

from compiler.bench.cpu import CpuSnapshot, CpuSpent, cpu_snapshot
from compiler.bench.floor import load_floor
from compiler.bench.load import Measurement, closed_loop
from compiler.bench.pipelines import PipelineBench
from compiler.bench.stats import ModelStats, difference, settled, snapshot
from compiler.bench.warmup import FirstRequest
from compiler.errors import ServerError
from compiler.export.binding import Binding
from compiler.export.examples import Plan, make_inputs, plans_for
from compiler.export.reference import EagerReference, load_built
from compiler.manifest import LoadedManifest, ModelSpec, load_manifest
from compiler.profiling.model_analyzer import ProfileResult, profile
from compiler.profiling.perf_analyzer import LOOSE_FLAGS, PerfAnalyzer, RanAway, Result, locate
from compiler.profiling.writer import commands_for_copy, profiling_folder
from compiler.server.ports import Ports
from compiler.server.process import TritonProcess
from compiler.server.session import embedded_server

Tick = Callable[[], None]


@dataclass
class PaMeasurement:
    """One perf_analyzer cell over its rounds: mean throughput, each percentile the median of the rounds'."""

    label: str
    concurrency: int
    results: list[Result] = field(default_factory=list)
    errors: int = 0  # perf_analyzer stops at a failed request; a failed cell is an exception
    samples_per_request: int = 1
    stats: dict[str, ModelStats] = field(default_factory=dict)  # what the cell cost each watched model (Triton's)
    cpu: CpuSpent | None = None  # the machine's CPU time by process over the cell's runs (/proc)

    @property
    def throughput(self) -> float:
        return sum(r.throughput for r in self.results) / len(self.results) if self.results else 0.0

    def percentile(self, q: float) -> float:
        field_of = {0.5: "p50_us", 0.9: "p90_us", 0.99: "p99_us"}[q]
        values = sorted(getattr(r, field_of) / 1000 for r in self.results)
        return values[len(values) // 2] if values else float("nan")


Row = Measurement | PaMeasurement


@dataclass
class ModelBench:
    name: str
    max_batch_size: int
    eager_latency: Measurement | None = None
    eager_batched: Measurement | None = None
    limit_latency: Measurement | None = None  # the built file called in-process at batch 1: the serving limit
    limit_batched: Measurement | None = None  # ... at the batch the server forms from 16 one-example requests
    served: list[PaMeasurement] = field(default_factory=list)  # the manifest's export (AOTI for 26.03 on)
    torchscript: list[PaMeasurement] = field(default_factory=list)  # the same model traced, served beside it
    tuning: dict[str, list[PaMeasurement]] = field(default_factory=dict)  # variant -> its rows (c1, c16 over HTTP)
    floor: list[PaMeasurement] = field(default_factory=list)  # the empty model beside it (floor.py), c1 per protocol
    floor_error: str | None = None
    failed: list[str] = field(default_factory=list)  # perf_analyzer cells that gave no report (`label: why`)
    pytriton: PaMeasurement | None = None  # at the highest concurrency
    pytriton_c1: PaMeasurement | None = None
    pytriton_error: str | None = None
    export: str = "trace"
    profiled: ProfileResult | None = None  # Model Analyzer's quick sweep at the COMPARED concurrencies
    profile_error: str | None = None


@dataclass
class BuildBench:
    full_build_s: float
    raw_export_s: float  # the same exports by hand: torch.jit.trace + save, or torch.export + aoti_compile_and_package
    noop_build_s: float
    raw_what: str = "torch.jit.trace + save"


@dataclass
class BenchResults:
    models: list[ModelBench]
    build: BuildBench | None
    seconds_per_cell: float
    rounds: int = 1
    pipelines: list[PipelineBench] = field(default_factory=list)
    first_requests: list[FirstRequest] = field(default_factory=list)  # with and without warmup
    build_error: str | None = None  # why the build rows are missing (the measurements above are kept)


@dataclass
class _Cell:
    """One measured configuration; every round adds a window to the same Measurement."""

    label: str
    make_caller: Callable[[], Callable[[], Any]]
    concurrency: int
    seconds: float
    samples_per_request: int = 1
    measurement: Measurement | None = None

    def run(self, warmup: int, tick: Tick) -> None:
        window = closed_loop(self.label, self.make_caller, self.concurrency, self.seconds, self.samples_per_request,
                             warmup=warmup, tick=tick)
        if self.measurement is None:
            self.measurement = window
        else:
            self.measurement.absorb(window)


@dataclass(frozen=True)
class _Rounds:
    """What every model and pipeline measured in one tritonserver shares: the served copies and their perf_analyzer
    commands, the server, and how long and how often each cell is measured."""

    served: Path
    profiling: Path
    analyzer: PerfAnalyzer
    http_url: str
    grpc_url: str
    seconds: float
    rounds: int
    tick: Tick
    server_pid: Callable[[], int | None] = lambda: None  # the server's process now (a restart changes it)


@dataclass
class _PaCell:
    """One perf_analyzer run per round: the build's own command, aimed at a server and protocol."""

    label: str
    analyzer: PerfAnalyzer
    command: list[str]
    url: str
    protocol: str
    concurrency: int
    seconds: float
    measurement: PaMeasurement | None = None
    stats_url: str | None = None  # the server's HTTP address, for its statistics (None: not ours, PyTriton's)
    watched: tuple[str, ...] = ()  # the models whose statistics the cell's load moves
    error: str = ""  # why perf_analyzer gave no report for it (the cell is then left out of later rounds)
    server_pid: Callable[[], int | None] = lambda: None  # a pid: where the cores went is read too (compiler/bench/cpu.py)

    def run(self, warmup: int, tick: Tick) -> None:
        del warmup  # perf_analyzer warms up itself (its first windows until stable)
        if self.error:
            return
        pid = self.server_pid()
        cpu_before: CpuSnapshot | None = None
        try:
            before = snapshot(self.stats_url, self.watched) if self.stats_url else {}
            cpu_before = cpu_snapshot(pid) if pid else None
            result = self.analyzer.measure(self.command, self.url, self.protocol,
                                           interval_ms=int(self.seconds * 1000), extra=LOOSE_FLAGS)
        except RanAway as err:  # measured all the same, by our own client (its CPU is this process's: the rest)
            result = self._own(err)
        except ServerError as err:  # one cell's failure must not lose the hour measured: said in the report
            said = [line.strip() for line in str(err).splitlines() if line.strip() and "perf_analyzer failed" not in
                    line and not line.strip().startswith("hint:")]
            self.error = said[0] if said else "perf_analyzer failed"
            tick()
            return
        if self.measurement is None:
            self.measurement = PaMeasurement(self.label, self.concurrency)
        self.measurement.results.append(result)
        if cpu_before is not None:
            cpu = cpu_snapshot(pid) - cpu_before
            self.measurement.cpu = cpu + self.measurement.cpu if self.measurement.cpu else cpu
        if self.stats_url:  # perf_analyzer's warm-up windows are in it too: the shares hold, the counts are larger;
            # read once the last executions' statistics are in (they land after the answers: stats.settled), so that
            # none of this cell's falls into the next one's
            for name, spent in difference(settled(self.stats_url, self.watched), before).items():
                self.measurement.stats[name] = self.measurement.stats.get(name, ModelStats()) + spent
        tick()


    def _own(self, ran_away: RanAway) -> Result:
        """The cell measured by the bench's own closed-loop client for as long as perf_analyzer's windows would
        have lasted (a warm-up and three), as a perf_analyzer result whose note says so."""
        from compiler.bench.own_client import batch_size, caller_factory

        window = closed_loop(self.label, caller_factory(self.command, self.url, self.protocol), self.concurrency,
                             max(1.0, 4 * self.seconds), batch_size(self.command), warmup=1)
        return Result(self.concurrency, self.protocol, window.throughput, window.percentile(0.5) * 1000,
                        window.percentile(0.9) * 1000, window.percentile(0.99) * 1000,
                        f"perf_analyzer ran past {ran_away.limit_s:.0f} s: measured by the bench's own client")


def _commands(profiling: Path, name: str) -> dict[int, list[str]]:
    """Concurrency -> the generated perf_analyzer command of model `name`."""
    found = {}
    for line in (profiling / name / "perf_analyzer.txt").read_text().splitlines():
        command = shlex.split(line)
        level = command[command.index("--concurrency-range") + 1].split(":")[0]
        found[int(level)] = command
    return found


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


def _limit_caller(model: ModelSpec, built: Any, binding: Binding, batch: int) -> Callable[[], Callable[[], Any]]:
    """The built file itself (`load_built`), called in-process as our backend calls it (a package's flat inputs in
    its call order through its loader, a TorchScript module by its binding) under inference_mode: what serving
    could reach."""
    import torch

    from compiler.export.aoti import call_order

    base = plans_for(model)[0]
    inputs = make_inputs(model, Plan("limit", batch if model.max_batch_size else None, base.sizes, seed=7))

    def make() -> Callable[[], Any]:
        if model.export == "aoti":
            flat = [inputs[name] for name in call_order(binding)]

            def run_package() -> Any:
                with torch.inference_mode():
                    return built.loader.run(flat)

            return run_package

        def run_module() -> Any:
            with torch.inference_mode():
                return binding.call(built, inputs)

        return run_module

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


#: Concurrencies of the TorchScript twin and PyTriton (the served export gets every one of `concurrencies`).
COMPARED = (1, 16)


def run_bench(manifest: Path, repository: Path, names: list[str] | None = None, seconds: float = 6.0,
              concurrencies: tuple[int, ...] = (1, 2, 4, 8, 16), with_pytriton: bool = True, with_build: bool = True,
              rounds: int = 2, tick: Tick = lambda: None, with_torchscript: bool = True,
              with_profile: bool = True, with_warmup: bool = True, with_tuning: bool = True,
              with_anchors: bool = True) -> BenchResults:
    """Per model, eager PyTorch, our server (the repository and its TorchScript twin, in one tritonserver) and
    PyTriton are all up at once and measured in `rounds` interleaved rounds, so that drift on a shared machine
    falls on all alike. Then (`with_profile`) Model Analyzer's quick sweep of each model, at the concurrencies the
    twin and PyTriton are compared at, with the server of the rounds stopped."""
    from compiler.manifest.wiring import plan_all
    from compiler.repository.record import recorded_outputs

    loaded = load_manifest(manifest)
    every = {m.name: m for m in loaded.manifest.models}
    plans = [p for p in plan_all(loaded, recorded_outputs(repository, every)) if not names or p.name in names]
    chosen = [m for m in loaded.manifest.models if not names or m.name in names]
    needed = {m.name for m in chosen} | {name for plan in plans for name in plan.models}
    analyzer = locate()
    benches: list[ModelBench] = []
    pipelines: list[PipelineBench] = []
    firsts: list[FirstRequest] = []
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        served = Path(scratch) / "models"
        profiling = Path(scratch) / "profiling"
        for name in sorted(needed):
            shutil.copytree(repository / name, served / name)
            shutil.copytree(profiling_folder(repository) / name, profiling / name)
        for plan in plans:
            for name in [s.model for s in plan.steps if s.generated] + [plan.name]:
                shutil.copytree(repository / name, served / name)
        _lift_queue_policies(served)
        twins = _torchscript_twins(loaded, chosen, Path(scratch), served, profiling) if with_torchscript else {}
        tuned = {model.name: _tuning_twins(model, served, profiling) for model in chosen} if with_tuning else {}
        with embedded_server(served) as (server, _):
            shared = _Rounds(served, profiling, analyzer, server.http_url, server.grpc_url, seconds, rounds, tick,
                             lambda: server.pid)
            for model in chosen:
                floor, floor_error = _floor(server, model, profiling)
                benches.append(_bench_model(model, loaded.directory, shared, concurrencies, with_pytriton,
                                            twins.get(model.name), tuned.get(model.name, {}), floor))
                benches[-1].floor_error = floor_error
            for plan in plans:
                pipelines.append(_bench_pipeline(plan, loaded, shared, with_anchors))
            if with_warmup:
                with server.watch.paused() if server.watch else contextlib.nullcontext():
                    firsts = _first_requests(server, loaded, chosen, plans, served)
                tick()
    if with_profile:
        for bench in benches:
            try:
                bench.profiled = profile(repository, bench.name, quick=True, concurrencies=COMPARED)
            except ServerError as err:
                bench.profile_error = str(err)
            tick()
    # the build always builds them all: time the same set
    build, build_error = None, None
    if with_build:
        try:
            build = _build_times(manifest, list(every), loaded)
        except subprocess.CalledProcessError as err:  # the build's own failure must not lose the hour measured
            said = (err.stderr or b"").decode(errors="replace").strip().splitlines()
            build_error = f"`{' '.join(err.cmd[1:])}` exited {err.returncode}: {said[-1] if said else ''}"
    return BenchResults(benches, build, seconds, rounds, pipelines, firsts, build_error)


#: Said in the report: why the measured copies queue without bound.
LIFTED = ("queue policies lifted in the measured copies: perf_analyzer stops at the first request a policy refuses, so "
          "at concurrency 16 a slow model's 5 s budget would end the measurement, not shed load (verify's overload "
          "phase measures shedding)")


def _lift_queue_policies(served: Path) -> None:
    """The measured copies without their default queue policy (LIFTED says why); everything else as built."""
    from compiler.repository import layout
    from compiler.triton_config import parse_text, to_text

    for folder in sorted(p for p in served.iterdir() if p.is_dir()):
        path = layout.config_file(folder)
        config = parse_text(path.read_text())
        if config.dynamic_batching.HasField("default_queue_policy"):
            config.dynamic_batching.ClearField("default_queue_policy")
            path.write_text(to_text(config))


def _bench_pipeline(plan: Any, loaded: LoadedManifest, shared: _Rounds, with_anchors: bool = True) -> PipelineBench:
    """The served ensemble at concurrency 1 and 16 (perf_analyzer, raw inputs) against the same steps in this
    process around eager PyTorch at batch 1 and at the batch the server forms; Triton's statistics per step."""
    served, profiling, analyzer, http_url, grpc_url = (shared.served, shared.profiling, shared.analyzer,
                                                       shared.http_url, shared.grpc_url)
    seconds, rounds, tick = shared.seconds, shared.rounds, shared.tick
    from compiler.bench.pipelines import anchor_cells, bench_items, in_process_caller, write_commands
    from compiler.pipeline.proof import Chain, as_request, eager_runners, step_folders

    models = {m.name: m for m in loaded.manifest.models}
    chain = Chain(plan, step_folders(plan, served), eager_runners(plan, models, loaded.directory))
    items = bench_items(plan, served, loaded.directory)
    input_name = plan.inputs[0].name
    batch = min(max(plan.spec.max_batch_size, 1), COMPARED[-1])
    steps = [s.model for s in plan.steps]
    bench = PipelineBench(plan.name, steps, batch)
    single = in_process_caller(chain, input_name, items, 1)
    batched = in_process_caller(chain, input_name, items, batch)
    single_ms, batched_ms = _probe_ms(single), _probe_ms(batched)
    cells: list[_Cell | _PaCell] = [
        _Cell("in-process steps + eager, batch 1", single, 1, max(seconds, REQUESTS_PER_THREAD * single_ms / 1000)),
        _Cell(f"in-process steps + eager, batch {batch}", batched, 1,
              max(seconds, REQUESTS_PER_THREAD * batched_ms / 1000), samples_per_request=batch)]
    commands = write_commands(plan.name, input_name, items, profiling / plan.name, COMPARED)
    served_cells = [_PaCell(f"served {protocol} c{c}", analyzer, commands[c], url, protocol, c,
                            max(seconds, REQUESTS_PER_THREAD * max(single_ms, batched_ms * min(c, batch) / batch) / 1000),
                            stats_url=http_url, watched=(plan.name, *steps), server_pid=shared.server_pid)
                    for protocol, url in (("http", http_url), ("grpc", grpc_url)) for c in COMPARED]
    cells += served_cells
    anchor, infinity = anchor_cells(plan, models, loaded.directory, served, items, batch, COMPARED[-1], seconds,
                                    profiling / plan.name) if with_anchors else (None, None)
    try:
        for index in range(rounds):
            for cell in [*cells, *(c for c in (anchor, infinity) if c)]:
                cell.run(warmup=3 if index == 0 else 1, tick=tick)
    finally:
        if infinity is not None:
            infinity.close()
    first, second = cells[0], cells[1]
    assert isinstance(first, _Cell) and isinstance(second, _Cell)
    bench.in_process_single, bench.in_process = first.measurement, second.measurement
    bench.served = [c.measurement for c in served_cells if c.measurement]
    bench.failed = _failed(cells)
    def difference(cell: Any) -> float | None:  # the same model? its answers against the pipeline's, text by text
        if cell.vectors is None:
            return None
        import numpy as np

        ours = chain.run({input_name: as_request(cell.texts[:len(cell.vectors)])})[plan.outputs[0].name]
        return float(np.abs(ours - cell.vectors).max())

    if anchor is not None:
        bench.anchor, bench.anchor_error, bench.anchor_difference = anchor.measurement, anchor.error, difference(anchor)
        bench.anchor_task = anchor.task
    if infinity is not None:
        bench.infinity, bench.infinity_error = infinity.measurement, infinity.error
        bench.infinity_difference = difference(infinity)
    return bench


def _first_requests(server: Any, loaded: LoadedManifest, models: list[ModelSpec], plans: list[Any],
                    served: Path) -> list[FirstRequest]:
    """Every model and pipeline loaded again without and with model_warmup, its first request timed."""
    import numpy as np
    import tritonclient.http as http

    from compiler.bench.warmup import measure, reload_plan
    from compiler.client.requests import infer_inputs
    from compiler.pipeline.proof import as_request, raw_inputs

    client = http.InferenceServerClient(server.http_url, network_timeout=600)
    every = {m.name: m for m in loaded.manifest.models}
    subjects: list[tuple[str, list[str], Callable[[], Any]]] = []  # name, steps, the request
    for model in models:
        arrays = make_inputs(model, Plan("first", 1 if model.max_batch_size else None, plans_for(model)[0].sizes,
                                         seed=5))
        subjects.append((model.name, [], functools.partial(client.infer, model.name, infer_inputs(http, model, arrays))))
    for plan in plans:
        request = http.InferInput(plan.inputs[0].name, [1, 1], "BYTES")
        request.set_data_from_numpy(np.asarray(as_request(raw_inputs(plan, served, loaded.directory)[:1])))
        subjects.append((plan.name, [s.model for s in plan.steps], functools.partial(client.infer, plan.name, [request])))
    # the configs to load, read while everything is served
    reloads = {(name, warm): reload_plan(server, name, every, steps, warm) for name, steps, _ in subjects
               for warm in (False, True)}
    for plan in plans:  # no ensemble may hold a model while it is loaded again
        server.unload_model(plan.name)
    found: list[FirstRequest] = []
    for name, steps, send in subjects:
        for warm in (False, True):
            found.append(measure(server, name, reloads[name, warm], send, warm))
        if steps:
            server.unload_model(name)
    return found


def _torchscript_twins(loaded: LoadedManifest, models: list[ModelSpec], scratch: Path, served: Path,
                       profiling: Path) -> dict[str, str]:
    """The AOTI models of the manifest traced instead (<name>_torchscript, names as TorchScript binds them), built
    by the compiler and put beside the originals: what a user who stayed on TorchScript would serve."""
    from ruamel.yaml import YAML

    from compiler.backend.pytorch import pt2_names
    from compiler.build import BuildOptions, build

    entries = []
    twins = {}
    for model in models:
        if model.export != "aoti":
            continue
        entry = model.model_dump(mode="json", exclude_none=True)
        entry.update(name=f"{model.name}_torchscript", export="trace")
        entry.pop("outputs", None)  # derived, named as TorchScript outputs are
        entry.pop("variants", None)
        for spec in entry["inputs"]:
            target = pt2_names.input_argument(spec["name"])
            if target is not None:
                spec["name"] = str(target[1]) if target[0] == "keyword" else f"INPUT__{target[1]}"
        entries.append(entry)
        twins[model.name] = entry["name"]
    if not entries:
        return {}
    twin_manifest = loaded.directory / f".bench-twins-{os.getpid()}.yaml"  # beside the manifest: its paths resolve
    try:
        with twin_manifest.open("w") as handle:
            YAML().dump({"triton_version": loaded.manifest.triton_version, "models": entries}, handle)
        output = scratch / "twins" / "models"
        build(twin_manifest, output, options=BuildOptions(cross_proof=False))  # a copy to measure, not to ship
    finally:
        twin_manifest.unlink(missing_ok=True)
    for name in twins.values():
        shutil.copytree(output / name, served / name)
        shutil.copytree(profiling_folder(output) / name, profiling / name)
    return twins


def _tuning_variants(model: ModelSpec, config: Any) -> dict[str, Callable[[Any], None]]:
    """The serving settings issue 25 asks to decide by measurement, each a change to the built config."""
    def delay(value: int) -> Callable[[Any], None]:
        def change(c: Any) -> None:
            c.dynamic_batching.max_queue_delay_microseconds = value
        return change

    def preferred(c: Any) -> None:
        c.dynamic_batching.preferred_batch_size.append(model.max_batch_size)

    def threads(instances: int, intra_op: int | None) -> Callable[[Any], None]:
        def change(c: Any) -> None:
            for group in c.instance_group:
                group.count = instances
            if intra_op is None:
                c.parameters.pop("INTRA_OP_THREAD_COUNT", None)
            else:
                c.parameters["INTRA_OP_THREAD_COUNT"].string_value = str(intra_op)
        return change

    from compiler.check.rules import merges

    variants: dict[str, Callable[[Any], None]] = {}
    # a config built to run one request per execution (preferred_batch_size [1], no delay) stays so: a delay would
    # merge requests past the preferred size (core's dynamic_batch_scheduler.cc sends whatever is pending once the
    # oldest request waited out the delay), which the build refused for a reason (AOTI-MERGE: wrong answers, then
    # signal 11 in libtriton_pytorch_aoti.so within seconds at c16; a model whose batch changes its answers)
    if merges(config):
        built = config.dynamic_batching.max_queue_delay_microseconds
        variants.update({f"queue delay {value} us": delay(value) for value in (0, 100, 1000) if value != built})
        if not config.dynamic_batching.preferred_batch_size:
            variants[f"preferred batch {model.max_batch_size}"] = preferred
    # how the cores are shared: one instance on torch's own threads (one per core), one instance on one thread, an
    # instance per core on one thread each; each that is not the built one
    cores = os.cpu_count() or 1
    counts = {group.count for group in config.instance_group} or {1}
    intra = config.parameters["INTRA_OP_THREAD_COUNT"].string_value if "INTRA_OP_THREAD_COUNT" in config.parameters \
        else None
    for label, instances, intra_op in (("1 instance, torch's threads", 1, None),
                                       ("INTRA_OP_THREAD_COUNT 1", 1, 1),
                                       (f"{cores} instances x INTRA_OP_THREAD_COUNT 1", cores, 1)):
        if (counts, intra) != ({instances}, None if intra_op is None else str(intra_op)):
            variants[label] = threads(instances, intra_op)
    return variants


def _tuning_twins(model: ModelSpec, served: Path, profiling: Path) -> dict[str, str]:
    """A copy of the built model per tuning variant (<name>__tune<i>), served beside it and measured in the same
    rounds; returns variant -> twin name."""
    from compiler.repository import layout
    from compiler.triton_config import parse_text, to_text

    config = parse_text(layout.config_file(served / model.name).read_text())
    twins = {}
    for number, (variant, change) in enumerate(_tuning_variants(model, config).items()):
        name = f"{model.name}__tune{number}"
        shutil.copytree(served / model.name, served / name)
        changed = type(config)()
        changed.CopyFrom(config)
        changed.name = name
        change(changed)
        layout.config_file(served / name).write_text(to_text(changed))
        commands_for_copy(profiling, model.name, name)
        twins[variant] = name
    return twins


def _floor(server: TritonProcess, model: ModelSpec, profiling: Path) -> tuple[str | None, str | None]:
    """The model's empty twin loaded beside it (floor.py), or why not."""
    from tritonclient.utils import InferenceServerException

    try:
        return load_floor(server, model, profiling), None
    except (ServerError, InferenceServerException, OSError) as err:
        return None, str(err).strip().splitlines()[0]


def _bench_model(model: ModelSpec, base: Path, shared: _Rounds, concurrencies: tuple[int, ...], with_pytriton: bool,
                 twin: str | None = None, tuned: dict[str, str] | None = None, floor: str | None = None) -> ModelBench:
    """`twin`, `tuned`, `floor`: the copies of the model served beside it (its TorchScript twin, its tuning
    variants, the empty model) whose rows are measured in the same rounds."""
    repository, profiling, analyzer, http_url, grpc_url = (shared.served, shared.profiling, shared.analyzer,
                                                           shared.http_url, shared.grpc_url)
    seconds, rounds, tick = shared.seconds, shared.rounds, shared.tick
    reference = EagerReference.load(model, base)  # as the build served it
    module, binding = reference.module, reference.binding
    bench = ModelBench(model.name, model.max_batch_size, export=model.export)
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
    kind = "package" if model.export == "aoti" else "TorchScript"
    built = load_built(repository / model.name)  # one load for both limit cells
    limit_single = _Cell(f"in-process {kind} batch 1", _limit_caller(model, built, binding, 1), 1, window(single_ms))
    cells: list[_Cell | _PaCell] = [eager_single, limit_single]
    eager_batched = limit_batched = None
    if batched:
        eager_batched = _Cell(f"eager batch {largest}", batched, 1, window(batched_ms), samples_per_request=largest)
        limit_batched = _Cell(f"in-process {kind} batch {largest}",
                              _limit_caller(model, built, binding, largest), 1, window(batched_ms),
                              samples_per_request=largest)
        cells += [eager_batched, limit_batched]
    mine = _commands(profiling, model.name)
    label = "served aoti" if model.export == "aoti" else "served"
    served = [_PaCell(f"{label} {protocol} c{c}", analyzer, mine[c], url, protocol, c, cell_seconds(c),
                      stats_url=http_url, watched=(model.name,))
              for protocol, url in (("http", http_url), ("grpc", grpc_url)) for c in concurrencies if c in mine]
    cells += served
    scripted: list[_PaCell] = []
    if twin:
        theirs = _commands(profiling, twin)
        scripted = [_PaCell(f"served torchscript {protocol} c{c}", analyzer, theirs[c], url, protocol, c,
                            cell_seconds(c), stats_url=http_url, watched=(twin,))
                    for protocol, url in (("http", http_url), ("grpc", grpc_url)) for c in COMPARED if c in theirs]
        cells += scripted
    empty: list[_PaCell] = []
    if floor:
        theirs = _commands(profiling, floor)
        empty = [_PaCell(f"empty model {protocol} c1", analyzer, theirs[1], url, protocol, 1, cell_seconds(1),
                         stats_url=http_url, watched=(floor,)) for protocol, url in (("http", http_url),
                                                                                    ("grpc", grpc_url)) if 1 in theirs]
        cells += empty
    tuning: dict[str, list[_PaCell]] = {}
    for variant, twin_name in (tuned or {}).items():
        theirs = _commands(profiling, twin_name)
        tuning[variant] = [_PaCell(f"{variant}, http c{c}", analyzer, theirs[c], http_url, "http", c, cell_seconds(c),
                                   stats_url=http_url, watched=(twin_name,)) for c in COMPARED if c in theirs]
        cells += tuning[variant]
    with contextlib.ExitStack() as stack:
        pytriton: list[_PaCell] = []
        if with_pytriton:
            try:
                url = stack.enter_context(_pytriton_server(repository / model.name, model))
                pytriton = [_PaCell(f"pytriton http c{c}", analyzer, mine[c], url, "http", c, cell_seconds(c))
                            for c in COMPARED if c in mine]
            except PyTritonUnavailable as err:
                bench.pytriton_error = str(err)
        cells += pytriton
        for index in range(rounds):
            for cell in cells:
                cell.run(warmup=3 if index == 0 else 1, tick=tick)
    bench.failed = _failed(cells)
    bench.eager_latency = eager_single.measurement
    bench.eager_batched = eager_batched.measurement if eager_batched else None
    bench.limit_latency = limit_single.measurement
    bench.limit_batched = limit_batched.measurement if limit_batched else None
    bench.served = [c.measurement for c in served if c.measurement]
    bench.torchscript = [c.measurement for c in scripted if c.measurement]
    bench.tuning = {variant: [c.measurement for c in rows if c.measurement] for variant, rows in tuning.items()}
    bench.floor = [c.measurement for c in empty if c.measurement]
    if len(pytriton) == 2:
        bench.pytriton_c1, bench.pytriton = pytriton[0].measurement, pytriton[1].measurement
    return bench


def _failed(cells: list[Any]) -> list[str]:
    """`label: why` of each perf_analyzer cell that gave no report in some round."""
    return [f"{cell.label}: {cell.error}" for cell in cells if isinstance(cell, _PaCell) and cell.error]


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
from compiler.export.binding import bind
from compiler.sources import load_source
from compiler.export.examples import make_inputs, plans_for
loaded = load_manifest(Path(sys.argv[1]))
out = Path(sys.argv[2])
for model in loaded.manifest.models:
    if model.name not in sys.argv[3:]:
        continue
    module = load_source(model, loaded.directory)
    example = make_inputs(model, plans_for(model)[0])
    with torch.no_grad():
        if model.export == "aoti":  # what a user writes by hand: export with the same dims, compile, package
            from compiler.export.aoti import dynamic_shapes, inductor_options
            binding = bind(model, module)
            args, kwargs = binding.split(example)
            exported = torch.export.export(module, tuple(args), kwargs, dynamic_shapes=dynamic_shapes(model, binding),
                                           strict=False)
            torch._inductor.aoti_compile_and_package(exported, package_path=str(out / f"{model.name}.pt2"),
                                                     inductor_configs=inductor_options(model))
        else:
            order = bind(model, module).order
            traced = torch.jit.trace(module, tuple(example[n] for n in order), strict=False)
            traced.save(str(out / f"{model.name}.pt"))
"""


def _timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def _build_times(manifest: Path, names: list[str], loaded: LoadedManifest) -> BuildBench:
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "models"
        full = _timed([sys.executable, "-m", "compiler", "build", "--manifest", str(manifest), "--output", str(output)])
        noop = min(_timed([sys.executable, "-m", "compiler", "build", "--manifest", str(manifest), "--output",
                           str(output)]) for _ in range(3))
        raw = _timed([sys.executable, "-c", _RAW, str(manifest), folder, *names])
    aoti = any(m.export == "aoti" for m in loaded.manifest.models)
    what = "torch.export + aoti_compile_and_package" if aoti else "torch.jit.trace + save"
    return BuildBench(full, raw, noop, what)
