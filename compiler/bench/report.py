"""docs/benchmarks.md and docs/benchmarks.png from one bench run."""

from __future__ import annotations

import importlib.metadata
import os
import platform
from datetime import date
from pathlib import Path

from compiler.bench.anchors import PINS, TASK_CLASSIFY
from compiler.bench.cpu import CLIENT, REST, SERVER, STUB_ROLE
from compiler.bench.load import Measurement
from compiler.bench.pipelines import PipelineBench
from compiler.bench.runner import COMPARED, LIFTED, REQUESTS_PER_THREAD, BenchResults, ModelBench, PaMeasurement, Row
from compiler.bench.stats import PT2_ORDER_SOURCE, STAGES
from compiler.bench.warmup import FirstRequest
from compiler.profiling.model_analyzer import VERSION as MODEL_ANALYZER_VERSION
from compiler.profiling.perf_analyzer import LOOSE_FLAGS


def _machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(next(ln for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal")).split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    return f"{os.cpu_count()} cores ({cpu}){memory}, no GPU, {platform.system()} {platform.release()}"


def _versions() -> str:
    names = ("torch", "transformers", "tritonclient", "nvidia-pytriton", "numpy")
    parts = []
    for name in names:
        try:
            parts.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    return ", ".join(parts) + ", tritonserver 2.51 (embedded)"


def _row(m: Row | None) -> str:
    if m is None:
        return "| - | - | - | - | - | - |"
    notes = sorted({r.note for r in getattr(m, "results", []) if r.note})  # perf_analyzer's windows, where they fell back
    label = m.label + (f" ({'; '.join(notes)})" if notes else "")
    return (f"| {label} | {m.concurrency} | {m.throughput:.1f} | {m.percentile(0.5):.1f} | {m.percentile(0.9):.1f} | "
            f"{m.percentile(0.99):.1f} |")


#: Issue 16's goals: served throughput at concurrency 16 at least this many times naive eager (the nn.Module at
#: batch max_batch_size under inference_mode), and served p50 at concurrency 1 no slower than eager batch 1.
THROUGHPUT_GOAL = 1.2


#: Issue 25's goals against the serving limit (the built file called in-process): served c16 throughput at least
#: this share of the limit at the batch the server forms, and served c1 p50 at most this much above its batch 1.
LIMIT_SHARE_GOAL = 0.85
LIMIT_LATENCY_GOAL_MS = 1.0
#: Issue 23's goal: a served pipeline at c16 at least this many times the same steps in one process.
PIPELINE_GOAL = 1.2
#: Issue 41's goal: a served text pipeline at c16 over the library in-process at batch 16 (sentence-transformers
#: encode(batch_size=16); for a classifier, transformers' text-classification pipeline).
ANCHOR_GOAL = 1.3
#: Issue 41's goal: a served text pipeline at c16 over infinity-emb serving the same folder (torch engine, same client).
INFINITY_GOAL = 2.0


def _verdict(ok: bool) -> str:
    return "met" if ok else "missed"


def _served(rows: list[PaMeasurement], concurrency: int, protocol: str) -> PaMeasurement | None:
    return next((m for m in rows if m.concurrency == concurrency and f" {protocol} " in f" {m.label} "), None)


def _against(served: list[PaMeasurement], batched: Measurement | None, batched_label: str,
             single: Measurement | None, single_label: str, share_goal: float, extra_goal_ms: float) -> list[str]:
    """Target rows: served c16 over a batched in-process row, and served c1 p50 minus an in-process batch-1 p50,
    per protocol."""
    lines = []
    for protocol in ("http", "grpc"):
        c16, c1 = _served(served, 16, protocol), _served(served, 1, protocol)
        if c16 and batched:
            share = c16.throughput / batched.throughput
            lines.append(f"| served {protocol} c16 / {batched_label} | {share:.2f} | ≥ {share_goal} | "
                         f"{_verdict(share >= share_goal)} |")
        if c1 and single:
            extra = c1.percentile(0.5) - single.percentile(0.5)
            lines.append(f"| served {protocol} c1 p50 − {single_label} p50 | {extra:+.2f} ms | "
                         f"≤ {extra_goal_ms:+.0f} ms | {_verdict(extra <= extra_goal_ms)} |")
    return lines


def _limit_targets(bench: ModelBench) -> list[str]:
    return _against(bench.served, bench.limit_batched, bench.limit_batched.label if bench.limit_batched else "",
                    bench.limit_latency, bench.limit_latency.label if bench.limit_latency else "",
                    LIMIT_SHARE_GOAL, LIMIT_LATENCY_GOAL_MS)


def _floor(bench: ModelBench) -> list[str]:
    """Served c1 p50 over the in-process batch-1 p50, and how much of it the empty model (floor.py) pays too."""
    if bench.floor_error:
        return [f"The empty model could not be measured: {bench.floor_error}", ""]
    lines = ["Where the c1 gap goes: the **empty model** is a TorchScript model with the same inputs and outputs "
             "that answers zeros of the shapes this model answers, run by the same NVIDIA PyTorch backend beside it "
             "in the same rounds (`compiler/bench/floor.py`): its p50 is what the client, the transport, Triton's "
             "scheduler and the backend's copies cost with no model at all; the rest is the model's run.", "",
             f"| protocol | served c1 p50 − {bench.limit_latency.label if bench.limit_latency else 'in-process'} p50 "
             "| empty model c1 p50 | the rest |", "|---|---|---|---|"]
    for protocol in ("http", "grpc"):
        c1, empty = _served(bench.served, 1, protocol), _served(bench.floor, 1, protocol)
        if c1 and empty and bench.limit_latency:
            gap = c1.percentile(0.5) - bench.limit_latency.percentile(0.5)
            lines.append(f"| {protocol} | {gap:+.2f} ms | {empty.percentile(0.5):.2f} ms | "
                         f"{gap - empty.percentile(0.5):+.2f} ms |")
    return [*lines, ""] if len(lines) > 4 else []


def _stages(rows: list[PaMeasurement], watched: list[str], ensembles: frozenset[str] = frozenset()) -> list[str]:
    """Triton's own statistics of each served row: ms per request in each stage, and the batches formed."""
    lines = ["| row | model | requests | " + " | ".join(f"{stage} ms" for stage in STAGES) +
             " | mean batch | batches formed (share of executions) |", "|---|---|---|" + "---|" * len(STAGES) + "---|---|"]
    said = set()
    for row in rows:
        for name in watched:
            stats = row.stats.get(name)
            if stats is None or not stats.requests:
                continue
            mark = ""
            if stats.out_of_order:  # an ensemble's sums mix its steps' stages, in order and not: left out
                said.add("ensemble" if name in ensembles else "reordered")
                if name not in ensembles:
                    stats, mark = stats.in_order(), " (reordered)"
            cells = [f"{stats.per_request_ms(stage):.2f}" if not (stats.out_of_order and stage != "queue") else "-"
                     for stage in STAGES]
            lines.append(f"| {row.label} | {name}{mark} | {stats.requests} | {' | '.join(cells)} | "
                         f"{stats.mean_batch:.1f} | {stats.formed()} |")
    if len(lines) <= 2:
        return []
    notes = []
    if said:
        notes.append(f"NVIDIA's PyTorch backend reports a .pt2 package's per-request statistics with its timestamps out "
                     f"of order ({PT2_ORDER_SOURCE}: exec_end, compute_start, compute_end are passed where Triton takes "
                     "compute_start, compute_end, exec_end), so Triton counts the whole execution as compute_input and "
                     "a negative compute_infer. Rows marked (reordered) are put back in order "
                     "(compiler/bench/stats.py, ModelStats.in_order)"
                     + ("; an ensemble's stages sum its steps', in order and not, and are left out (-)" if "ensemble"
                        in said else "") + ".")
    return [*lines, "", *notes, *([""] if notes else [])]


def _targets(bench: ModelBench) -> list[str]:
    lines = []
    for protocol in ("http", "grpc"):
        c16 = next((m for m in bench.served if m.concurrency == 16 and f" {protocol} " in m.label), None)
        c1 = next((m for m in bench.served if m.concurrency == 1 and f" {protocol} " in m.label), None)
        if c16 and bench.eager_batched:
            ratio = c16.throughput / bench.eager_batched.throughput
            lines.append(f"| served {protocol} c16 throughput / eager batch {bench.max_batch_size} | {ratio:.2f} | "
                         f"≥ {THROUGHPUT_GOAL} | {_verdict(ratio >= THROUGHPUT_GOAL)} |")
        if c1 and bench.eager_latency:
            extra = c1.percentile(0.5) - bench.eager_latency.percentile(0.5)
            lines.append(f"| served {protocol} c1 p50 − eager batch 1 p50 | {extra:+.1f} ms | ≤ 0 | {_verdict(extra <= 0)} |")
        twin = next((m for m in bench.torchscript if m.concurrency == 16 and f" {protocol} " in m.label), None)
        if c16 and twin:
            ratio = c16.throughput / twin.throughput
            lines.append(f"| served {bench.export} / served TorchScript, {protocol} c16 throughput | {ratio:.2f} | "
                         f"≥ 1.0 | {_verdict(ratio >= 1.0)} |")
    c16 = next((m for m in bench.served if m.concurrency == 16 and " http " in m.label), None)
    if c16 and bench.pytriton:
        ratio = c16.throughput / bench.pytriton.throughput
        lines.append(f"| served / PyTriton, http c16 throughput | {ratio:.2f} | ≥ 1.0 | {_verdict(ratio >= 1.0)} |")
    return lines


def _profiled(bench: ModelBench) -> list[str]:
    """Model Analyzer's quick sweep: every measurement, the build's own configuration first, and its pick."""
    if bench.profile_error:
        return [f"Model Analyzer could not profile {bench.name} here: {bench.profile_error}", ""]
    result = bench.profiled
    if result is None:
        return []
    ordered = sorted(result.measurements, key=lambda m: (not m.is_default, m.config, m.concurrency))
    lines = [f"### Model Analyzer: {bench.name}", "",
             f"`compiler profile {bench.name} --quick` (Model Analyzer {MODEL_ANALYZER_VERSION}, local launch of the "
             "embedded tritonserver, its perf_analyzer over gRPC, the stability flags above), at concurrency "
             f"{' and '.join(str(c) for c in COMPARED)}: the build's own configuration (`_config_default`) and the "
             "quick sweep's (1 or 2 instances, queue delay 0 or 100 us, the model's max batch size). Inferences "
             "per second; one measurement each, after the rounds above, with their server stopped.", "",
             "| configuration | instances | max batch | queue delay us | concurrency | infer/s | p99 ms |",
             "|---|---|---|---|---|---|---|"]
    for m in ordered:
        delay = "-" if m.max_queue_delay_microseconds is None else str(m.max_queue_delay_microseconds)
        lines.append(f"| {m.config} | {m.instance_count} | {m.max_batch_size} | {delay} | {m.concurrency} | "
                     f"{m.throughput:.1f} | {m.p99_ms:.1f} |")
    best = result.best
    lines += ["", f"Model Analyzer's pick: **{best.config}** ({best.instance_count} instance(s), max batch "
              f"{best.max_batch_size}, queue delay {best.max_queue_delay_microseconds} us): "
              f"{best.throughput:.1f} infer/s at concurrency {best.concurrency}, written as `variants: "
              f"profiled:` to `Triton/profiling/{bench.name}/model_analyzer/variants.yaml`."]
    top = COMPARED[-1]
    default = next((m for m in result.measurements if m.is_default and m.concurrency == top), None)
    chosen = next((m for m in result.measurements if m.config == best.config and m.concurrency == top), None)
    if default and chosen and default.throughput > 0:
        lines.append(f"At concurrency {top}: the pick / the build's configuration = "
                     f"{chosen.throughput / default.throughput:.2f}.")
    return [*lines, ""]


def _tuning(bench: ModelBench) -> list[str]:
    """Each serving setting against the built configuration, measured side by side in the same rounds."""
    if not bench.tuning:
        return []
    base1, base16 = _served(bench.served, 1, "http"), _served(bench.served, 16, "http")
    lines = ["Serving settings, each a copy of the built model with one change, served beside it and measured in the "
             "same rounds over HTTP (the built configuration first):", "",
             "| configuration | c1 p50 ms | c16 examples/s | c16 / built | c16 mean batch |", "|---|---|---|---|---|"]
    if base1 and base16:
        stats = base16.stats.get(bench.name)
        lines.append(f"| built | {base1.percentile(0.5):.1f} | {base16.throughput:.1f} | 1.00 | "
                     f"{stats.mean_batch if stats else float('nan'):.1f} |")
    for variant, rows in bench.tuning.items():
        c1 = next((m for m in rows if m.concurrency == 1), None)
        c16 = next((m for m in rows if m.concurrency == 16), None)
        stats = next(iter(c16.stats.values()), None) if c16 else None
        ratio = c16.throughput / base16.throughput if c16 and base16 and base16.throughput else float("nan")
        lines.append(f"| {variant} | {c1.percentile(0.5) if c1 else float('nan'):.1f} | "
                     f"{c16.throughput if c16 else float('nan'):.1f} | {ratio:.2f} | "
                     f"{stats.mean_batch if stats else float('nan'):.1f} |")
    return [*lines, ""]


def _pipeline(bench: PipelineBench) -> list[str]:
    lines = [f"## Pipeline {bench.name}", "", f"Steps: {' → '.join(bench.steps)}. **in-process** runs the same step "
             "code the served steps run, around eager PyTorch, in the benchmark process (one call per batch); "
             "**served** sends one raw input per request (perf_analyzer, the bench's input file of raw texts or "
             "image bytes).", "", "| what | concurrency | inputs/s | p50 ms | p90 ms | p99 ms |",
             "|---|---|---|---|---|---|", _row(bench.in_process_single), _row(bench.in_process),
             *[_row(m) for m in bench.served], *([_row(bench.anchor)] if bench.anchor else []),
             *([_row(bench.infinity)] if bench.infinity else []), "",
             "| target | measured | goal | |", "|---|---|---|---|"]
    lines += _against(bench.served, bench.in_process, f"in-process batch {bench.batch}", bench.in_process_single,
                      "in-process batch 1", PIPELINE_GOAL, 0.0)
    for protocol in ("http", "grpc"):
        c16 = _served(bench.served, 16, protocol)
        if c16 and bench.anchor and bench.anchor.throughput:
            share = c16.throughput / bench.anchor.throughput
            lines.append(f"| served {protocol} c16 / {bench.anchor.label} | {share:.2f} | ≥ {ANCHOR_GOAL} | "
                         f"{_verdict(share >= ANCHOR_GOAL)} |")
        if c16 and bench.infinity and bench.infinity.throughput:
            share = c16.throughput / bench.infinity.throughput
            lines.append(f"| served {protocol} c16 / {bench.infinity.label} | {share:.2f} | ≥ {INFINITY_GOAL} | "
                         f"{_verdict(share >= INFINITY_GOAL)} |")
    lines.append("")
    classifier = bench.anchor_task == TASK_CLASSIFY
    answers = "probabilities" if classifier else "vectors"
    if bench.anchor:
        agreement = f"{bench.anchor_difference:.1e}" if bench.anchor_difference is not None else "(not compared)"
        what = ("transformers' text-classification pipeline (every class's probability), with the classifier as the "
                "build loaded it (its folder saved again with its head)" if classifier else
                "sentence-transformers, with the model's own folder")
        how = "in batches in their order" if classifier else "sorted by length into batches, as encode() does"
        lines += [f"**{bench.anchor.label}** is {what} ({', '.join(PINS)}) in a process of its own, on the same "
                  f"{bench.anchor.samples_per_request} texts: each call runs all of them ({how}), so its latency "
                  f"columns are per call. Its {answers} differ from the pipeline's in-process answers by at most "
                  f"{agreement} (its first texts).", ""]
    if bench.anchor_error:
        lines += [f"The in-process library anchor could not be measured: {bench.anchor_error}", ""]
    if bench.infinity:
        agreement = f"{bench.infinity_difference:.1e}" if bench.infinity_difference is not None else "(not compared)"
        endpoint = "/classify" if classifier else "/embeddings"
        lines += [f"**{bench.infinity.label}** is infinity-emb (from the same pins) serving the same folder with its "
                  f"torch engine on the CPU ({endpoint}), driven over HTTP by the bench's closed-loop client: "
                  f"{bench.infinity.concurrency} threads, one text per request, the same texts in turn. Its "
                  f"{answers} differ from the pipeline's in-process answers by at most {agreement} (its first "
                  "texts).", ""]
    if bench.infinity_error:
        lines += [f"The infinity-emb anchor could not be measured: {bench.infinity_error}", ""]
    shares = []
    for row in bench.served:
        total = sum(row.stats[s].busy_ns for s in bench.steps if s in row.stats)
        if total:
            parts = [f"{s} {100 * row.stats[s].busy_ns / total:.0f}%" for s in bench.steps if s in row.stats]
            shares.append(f"| {row.label} | {', '.join(parts)} |")
    if shares:
        lines += ["Each step's share of the compute time (its executions' compute_infer, each execution once):", "",
                  "| row | share per step |", "|---|---|", *shares, ""]
    lines += _cpu_table(bench.served, bench.steps)
    lines += _failures(bench.failed)
    stages = _stages(bench.served, [bench.name, *bench.steps], frozenset({bench.name}))
    if stages:
        lines += ["Per step (Triton's statistics):", "", *stages]
    return lines


def _cpu_table(rows: list[PaMeasurement], steps: list[str]) -> list[str]:
    """Where the machine's cores went during each served row, by process (compiler/bench/cpu.py): the server, the
    stubs of the pipeline's Python steps, perf_analyzer, and the rest (other models' stubs included)."""
    measured = [(row.label, row.cpu) for row in rows if row.cpu and row.cpu.wall_s > 0]
    if not measured:
        return []
    stubs = [f"{step}{STUB_ROLE}" for step in steps if any(f"{step}{STUB_ROLE}" in cpu.seconds for _, cpu in measured)]
    roles = [SERVER, *stubs, CLIENT]
    table = ["| row | " + " | ".join([*roles, REST]) + " | idle |", "|---|" + "---|" * (len(roles) + 2)]
    for label, cpu in measured:
        rest = sum(seconds for name, seconds in cpu.seconds.items() if name not in roles) / cpu.wall_s
        cells = [f"{100 * cpu.core_share(name):.0f}%" for name in roles] + [f"{100 * rest:.0f}%", f"{100 * cpu.idle:.0f}%"]
        table.append(f"| {label} | " + " | ".join(cells) + " |")
    cores = max(cpu.cores for _, cpu in measured)
    return [f"Where the machine's {cores} cores went during each served row, in % of one core: each process's CPU "
            "time from /proc over the row's windows, perf_analyzer's warm-up included. tritonserver is its front "
            "ends, the ensemble's scheduler and the C++ backend with the models it runs; a Python step runs in its "
            "stub; the rest is the bench's own process, other models' stubs and anything else on the machine "
            "(compiler/bench/cpu.py):", "", *table, ""]


def _failures(failed: list[str]) -> list[str]:
    if not failed:
        return []
    return ["perf_analyzer gave no report for (the cell was left out of later rounds; its row is missing or has "
            "the rounds before):", "", *[f"- {line}" for line in failed], ""]


def _first_requests(rows: list[FirstRequest]) -> list[str]:
    lines = ["## The first request after READY", "",
             "Each model and pipeline unloaded and loaded again in the served tritonserver, without and with "
             "`model_warmup` (zeros at batch 1 and the maximum batch for a model; a short text or a small PNG for a "
             "pipeline's first step), then one request timed, and the median of the next five. A pipeline is loaded "
             "again with every step and model it runs.", "",
             "| model | warmup | load s | first request ms | then (median of 5) ms |", "|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row.name} | {'yes' if row.warm else 'no'} | {row.load_s:.1f} | {row.first_ms:.1f} | "
                     f"{row.steady_ms:.1f} |")
    return [*lines, ""]


def write_report(results: BenchResults, folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["# Benchmarks", "",
             f"Made by `make bench` on {date.today().isoformat()}: {_machine()}.", f"Versions: {_versions()}.", "",
             "**Served** rows are measured by perf_analyzer 2.51 (Triton's own load generator, from the tritonclient "
             "2.51.0 wheel) running the commands the build wrote to `Triton/profiling/<model>/perf_analyzer.txt`: "
             "one example per request (`-b 1`), the generated input data and shapes, C concurrent requests, over "
             "HTTP and gRPC; the server's dynamic batcher may merge them. perf_analyzer's windows last "
             f"at least {results.seconds_per_cell:.0f} s (longer for slow models: {REQUESTS_PER_THREAD} requests "
             "per client at the eager latency of the batch the server can form), with its stability rule loosened "
             f"for this shared machine (`{' '.join(LOOSE_FLAGS)}`); a row whose label says \"measured by the bench's "
             "own client\" is one where perf_analyzer ran past its time limit (its windows can run away on a busy "
             "machine: `compiler/profiling/perf_analyzer.py`, RUNAWAY) and the same command was sent by the bench's "
             "closed-loop client instead. **Eager** rows run the nn.Module in the benchmark "
             "process under `torch.inference_mode()` in a closed loop (perf_analyzer only measures servers). "
             "**served torchscript** is the same model exported with `trace` (frozen; a CNN channels_last) and served beside it in the "
             "same tritonserver; **pytriton** serves the same model file as a Python callable. Throughput is "
             f"examples per second. Every row is measured once per round in {results.rounds} interleaved rounds: "
             "perf_analyzer rows give the mean throughput and the median of each percentile over the rounds, eager "
             f"rows cover all their windows. The {LIFTED}.", ""]
    for bench in results.models:
        lines += [f"## {bench.name}", "", "| what | concurrency | examples/s | p50 ms | p90 ms | p99 ms |",
                  "|---|---|---|---|---|---|", _row(bench.eager_latency), _row(bench.limit_latency)]
        if bench.eager_batched:
            lines += [_row(bench.eager_batched), _row(bench.limit_batched)]
        lines += [_row(m) for m in bench.served]
        lines += [_row(m) for m in bench.floor]
        lines += [_row(m) for m in bench.torchscript]
        lines += [_row(m) for m in (bench.pytriton_c1, bench.pytriton) if m]
        lines += [""]
        if bench.pytriton:
            lines += [f"PyTriton (c{COMPARED[0]} and c{COMPARED[-1]}) serves the same model file as a Python callable "
                      "(`@batch`, dynamic batching with the same queue delay) in its own tritonserver, with "
                      "`PYTRITON_NO_TENSORSTORE=1`: its shared-memory tensor store cannot start inside the wheel's "
                      "Python 3.11 stub on this machine, so it uses its base64 transport.", ""]
        if bench.pytriton_error:
            lines += [f"PyTriton could not be measured here: {bench.pytriton_error}", ""]
        lines += ["| target | measured | goal | |", "|---|---|---|---|", *_targets(bench), *_limit_targets(bench), ""]
        lines += _floor(bench)
        lines += _failures(bench.failed)
        lines += _tuning(bench)
        stages = _stages(bench.served + bench.torchscript, [bench.name, f"{bench.name}_torchscript"])
        if stages:
            lines += ["Where a served request's time goes (Triton's statistics extension, over each row's windows; "
                      "compute stages are per execution, so each request of a batch carries the whole batch's):", "",
                      *stages]
        lines += _profiled(bench)
    for pipeline in results.pipelines:
        lines += _pipeline(pipeline)
    if results.first_requests:
        lines += _first_requests(results.first_requests)
    if results.build:
        b = results.build
        ratio = b.full_build_s / b.raw_export_s
        lines += ["## Build", "", "| what | seconds |", "|---|---|",
                  f"| `compiler build` of every model (export + proof + config), fresh process | {b.full_build_s:.1f} |",
                  f"| raw `{b.raw_what}` of the same models, fresh process | {b.raw_export_s:.1f} |",
                  f"| no-op `compiler build` (best of 3) | {b.noop_build_s:.2f} |", "",
                  "| target | measured | goal | |", "|---|---|---|---|",
                  f"| full build / raw export | {ratio:.2f} | ≤ 1.2 | {_verdict(ratio <= 1.2)} |",
                  f"| no-op build | {b.noop_build_s:.2f} s | < 1 s | {_verdict(b.noop_build_s < 1)} |", ""]
    if results.build_error:
        lines += ["## Build", "", f"Not measured: {results.build_error}", ""]
    markdown = folder / "benchmarks.md"
    markdown.write_text("\n".join(lines) + _kept_by_hand(markdown))
    plot = folder / "benchmarks.png"
    _plot(results, plot)
    return markdown, plot


#: Where the measured report ends and the decisions written from it begin: make bench keeps what follows.
BY_HAND = "<!-- Written by hand from the numbers above; make bench keeps everything below this line. -->"


def _kept_by_hand(markdown: Path) -> str:
    """The hand-written part of the report it replaces (the decisions taken from its numbers), if it has one."""
    old = markdown.read_text() if markdown.is_file() else ""
    return "\n" + old[old.index(BY_HAND):] if BY_HAND in old else ""


def _plot(results: BenchResults, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels: list[tuple[str, list[Row]]] = [
        (bench.name, [m for m in [bench.eager_latency, bench.limit_latency, bench.eager_batched, bench.limit_batched,
                                  *bench.served, *bench.torchscript, bench.pytriton_c1, bench.pytriton] if m])
        for bench in results.models]
    panels += [(f"pipeline {p.name}", [m for m in [p.in_process_single, p.in_process, *p.served] if m])
               for p in results.pipelines]
    figure, axes = plt.subplots(1, max(len(panels), 1), figsize=(6 * max(len(panels), 1), 4.5), squeeze=False)
    for axis, (title, measured) in zip(axes[0], panels):
        labels = [m.label for m in measured]
        values = [m.throughput for m in measured]
        colours = ["#7f7f7f" if m.label.startswith("eager") else "#2ca02c" if m.label.startswith("in-process")
                   else "#9467bd" if m.label.startswith("pytriton") else "#ff7f0e" if "torchscript" in m.label
                   else "#1f77b4" for m in measured]
        axis.barh(labels, values, color=colours)
        axis.invert_yaxis()
        axis.set_xlabel("examples / s")
        axis.set_title(title)
        for y, value in enumerate(values):
            axis.text(value, y, f" {value:.0f}", va="center", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
