"""docs/benchmarks.md and docs/benchmarks.png from one bench run."""

from __future__ import annotations

import importlib.metadata
import os
import platform
from datetime import date
from pathlib import Path

from compiler.bench.load import Measurement
from compiler.bench.runner import REQUESTS_PER_THREAD, BenchResults, ModelBench


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


def _row(m: Measurement | None) -> str:
    if m is None:
        return "| - | - | - | - | - | - |"
    return (f"| {m.label} | {m.concurrency} | {m.throughput:.1f} | {m.percentile(0.5):.1f} | {m.percentile(0.9):.1f} | "
            f"{m.percentile(0.99):.1f} |")


def _targets(bench: ModelBench) -> list[str]:
    lines = []
    served_c16 = max((m for m in bench.served if m.concurrency == 16), key=lambda m: m.throughput, default=None)
    served_c1 = min((m for m in bench.served if m.concurrency == 1), key=lambda m: m.percentile(0.5), default=None)
    if served_c16 and bench.eager_batched:
        ratio = served_c16.throughput / bench.eager_batched.throughput
        lines.append(f"| served c16 throughput / eager batched | {ratio:.2f} | ≥ 0.9 | {'met' if ratio >= 0.9 else 'missed'} |")
    if served_c1 and bench.eager_latency:
        extra = served_c1.percentile(0.5) - bench.eager_latency.percentile(0.5)
        lines.append(f"| served c1 p50 − eager p50 | {extra:+.1f} ms | ≤ +2 ms | {'met' if extra <= 2 else 'missed'} |")
    if served_c16 and bench.pytriton:
        ratio = served_c16.throughput / bench.pytriton.throughput
        lines.append(f"| served c16 / PyTriton c16 throughput | {ratio:.2f} | ≥ 1.0 | {'met' if ratio >= 1.0 else 'missed'} |")
    served_http_c1 = next((m for m in bench.served if m.concurrency == 1 and "http" in m.label), None)
    if served_http_c1 and bench.pytriton_c1:
        extra = served_http_c1.percentile(0.5) - bench.pytriton_c1.percentile(0.5)
        lines.append(f"| served http c1 p50 − PyTriton http c1 p50 | {extra:+.1f} ms | ≤ 0 | "
                     f"{'met' if extra <= 0 else 'missed'} |")
    return lines


def write_report(results: BenchResults, folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["# Benchmarks", "",
             f"Made by `make bench` on {date.today().isoformat()}: {_machine()}.", f"Versions: {_versions()}.", "",
             "Closed loop: C client threads, each sending its next request when the last is answered; one example "
             "per request (batch 1) against the server, whose dynamic batcher may merge them. Eager PyTorch runs in "
             "the benchmark process on the same inputs. Throughput is examples per second. Each window lasts at "
             f"least {results.seconds_per_cell:.0f} s, and long enough for {REQUESTS_PER_THREAD} requests per thread at "
             "the eager latency of the batch the server can form. Eager PyTorch, our server and PyTriton are up "
             f"together and every row is measured once per round in {results.rounds} interleaved rounds; a row's "
             "figures cover all its windows, so that drift on this shared machine falls on all of them alike.", ""]
    for bench in results.models:
        lines += [f"## {bench.name}", "", "| what | concurrency | examples/s | p50 ms | p90 ms | p99 ms |",
                  "|---|---|---|---|---|---|", _row(bench.eager_latency)]
        if bench.eager_batched:
            lines.append(_row(bench.eager_batched))
        lines += [_row(m) for m in bench.served]
        lines += [_row(m) for m in (bench.pytriton_c1, bench.pytriton) if m]
        lines += [""]
        if bench.pytriton:
            lines += ["PyTriton serves the same model.pt as a Python callable (`@batch`, dynamic batching with the "
                      "same queue delay) in the same tritonserver, with `PYTRITON_NO_TENSORSTORE=1`: its shared-memory "
                      "tensor store cannot start inside the wheel's Python 3.11 stub on this machine, so it uses its "
                      "base64 transport.", ""]
        if bench.pytriton_error:
            lines += [f"PyTriton could not be measured here: {bench.pytriton_error}", ""]
        lines += [ "| target | measured | goal | |", "|---|---|---|---|", *_targets(bench), ""]
        errors = sum(m.errors for m in [*bench.served, *filter(None, [bench.pytriton_c1, bench.pytriton])])
        lines += [f"Request errors during the run: {errors}.", ""]
    if results.build:
        b = results.build
        ratio = b.full_build_s / b.raw_trace_s
        lines += ["## Build", "", "| what | seconds |", "|---|---|",
                  f"| `compiler build` of every model (trace + proof + config), fresh process | {b.full_build_s:.1f} |",
                  f"| raw `torch.jit.trace` + save of the same models, fresh process | {b.raw_trace_s:.1f} |",
                  f"| no-op `compiler build` (best of 3) | {b.noop_build_s:.2f} |", "",
                  "| target | measured | goal | |", "|---|---|---|---|",
                  f"| full build / raw trace+save | {ratio:.2f} | ≤ 2 | {'met' if ratio <= 2 else 'missed'} |",
                  f"| no-op build | {b.noop_build_s:.2f} s | < 1 s | {'met' if b.noop_build_s < 1 else 'missed'} |", ""]
    markdown = folder / "benchmarks.md"
    markdown.write_text("\n".join(lines))
    plot = folder / "benchmarks.png"
    _plot(results, plot)
    return markdown, plot


def _plot(results: BenchResults, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(results.models), figsize=(6 * len(results.models), 4.5), squeeze=False)
    for axis, bench in zip(axes[0], results.models):
        measured = [m for m in [bench.eager_latency, bench.eager_batched, *bench.served, bench.pytriton_c1,
                                bench.pytriton] if m]
        labels = [m.label for m in measured]
        values = [m.throughput for m in measured]
        colours = ["#7f7f7f" if m.label.startswith("eager") else "#9467bd" if m.label.startswith("pytriton")
                   else "#1f77b4" for m in measured]
        axis.barh(labels, values, color=colours)
        axis.invert_yaxis()
        axis.set_xlabel("examples / s")
        axis.set_title(bench.name)
        for y, value in enumerate(values):
            axis.text(value, y, f" {value:.0f}", va="center", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
