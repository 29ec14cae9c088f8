"""perf_analyzer, Triton's own load generator, run against our server with the commands the build generates.

The binary ships in the tritonclient wheel of the embedded server's release (2.51.0, fetched by `make setup`
into the cache beside the release schemas). It needs libb64 and the CUDA runtime's library (for its
shared-memory options, unused here): both ship in the nvidia-pytriton wheel under hashed names, so a folder
of plainly named links goes first on LD_LIBRARY_PATH.

    pa = locate()
    result = pa.measure(command_from_perf_analyzer_txt, "127.0.0.1:8001", "grpc", interval_ms=2000)
    result.throughput, result.p50_us
"""

from __future__ import annotations

import csv
import os
import stat
import subprocess
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from compiler.errors import Problem, ServerError
from compiler.releases import EMBEDDED_RELEASE, SERVER_VERSION
from compiler.triton_config.release_schema import CACHE, SchemaUnavailable, tritonclient_wheel

VERSION = SERVER_VERSION[EMBEDDED_RELEASE]
#: plain name -> the glob of its hashed copy in nvidia_pytriton.libs/
LIBRARIES = {"libb64.so.0d": "libb64-*.so.0d", "libcudart.so.12": "libcudart-*.so.12*"}
#: perf_analyzer waits for 3 windows within 10% of each other and gives up after 10 trials; on a shared 2-core
#: machine ResNet-50 at concurrency 1 missed even 30% over 6 windows (and Model Analyzer, on such a failure, grows
#: the window and measures again, up to 10 times). With these flags perf_analyzer reports the average of its last 3
#: windows whatever their spread (it takes a warm-up window first, so 3 trials are too few). 999% was not loose
#: enough: beside a worker compiling a model, 16-request windows here differed more than tenfold, so the bound is one
#: no two non-empty windows exceed. `make bench` gets its stability from interleaved rounds instead, and
#: `compiler profile` uses these flags unless told --strict-stability.
LOOSE_STABILITY = {"stability-percentage": "1000000000", "max-trials": "6"}
LOOSE_FLAGS = tuple(part for key, value in LOOSE_STABILITY.items() for part in (f"--{key}", value))
#: What perf_analyzer says of time windows in which no request completed, or that never agreed even at LOOSE_STABILITY
#: (a window without requests counts as unstable), and the requests a count window waits for instead.
UNSETTLED = ("No valid requests recorded within time interval", "Failed to obtain stable measurement")
COUNT_WINDOW = 16
#: Windows can run away on a busy 2-core machine: perf_analyzer (2.51) summarises each window on its main thread while
#: its 16 workers go on sending, and what they send meanwhile joins what it must summarise. Seen beside a CPU-heavy
#: job: a tiny model answered at 30,000 requests a second at concurrency 16, 250 ms windows, still measuring after
#: 10 minutes with 11 GiB of request records (gdb: the main thread in InferenceProfiler::Summarize,
#: ValidLatencyMeasurement). So a run gets this many times its expected length (a warm-up window and the trials)
#: plus RUNAWAY_SLACK_S; past it, it is stopped and RanAway raised (the bench then measures the cell with its own
#: client, and says so). Its --request-count is no way out: in 2.51 it reports throughput over a fixed second, and at
#: concurrency 16 it waited on 128 answers of which 124 were counted, for good.
RUNAWAY = 3
RUNAWAY_SLACK_S = 15


class RanAway(ServerError):
    """perf_analyzer ran past its time limit (RUNAWAY) and was stopped."""

    def __init__(self, problem: Problem, limit_s: float):
        super().__init__(problem)
        self.limit_s = limit_s


@dataclass(frozen=True)
class Result:
    concurrency: int
    protocol: str
    throughput: float  # inferences per second
    p50_us: float
    p90_us: float
    p99_us: float
    note: str = ""  # how it was measured, where that is not as asked


@dataclass(frozen=True)
class PerfAnalyzer:
    binary: Path
    library_path: str

    def run(self, args: list[str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "LD_LIBRARY_PATH": self.library_path}
        return subprocess.run([str(self.binary), *args], capture_output=True, text=True, env=env, timeout=timeout)

    def measure(self, command: list[str], url: str, protocol: str, interval_ms: int = 2000,
                extra: tuple[str, ...] = ()) -> Result:
        """Run one generated command (perf_analyzer.txt) against `url` over `protocol`; its CSV report parsed.
        `extra`: more flags (a short test loosens the stability criteria, say). Time windows of `interval_ms` that
        did not settle are measured again in count windows (the result's note says so); a run past its limit raises
        RanAway."""
        args = [*_retarget(command[1:], url, protocol), *extra]
        counted = "count_windows" in args  # windows of a count of requests: how long they take is the model's
        limit = 600 if counted else RUNAWAY_SLACK_S + RUNAWAY * (_trials(args) + 1) * interval_ms / 1000
        with tempfile.TemporaryDirectory() as folder:
            report = Path(folder) / "report.csv"
            done = self._bounded([*args, "--measurement-interval", str(interval_ms), "-f", str(report)], limit)
            unsettled = done.returncode != 0 and any(w in done.stdout + done.stderr for w in UNSETTLED)
            if unsettled:
                # windows of a time a busy machine completed no request in, or that never agreed: windows of a count
                # of requests instead, which last until that many are answered (a short measurement on a loaded
                # machine then reports, and says so)
                report.unlink(missing_ok=True)
                done = self._bounded([*args, "--measurement-mode", "count_windows", "--measurement-request-count",
                                      str(COUNT_WINDOW), "-f", str(report)], limit)
            if done.returncode != 0 or not report.is_file():
                tail = (done.stdout + done.stderr).strip().splitlines()[-8:]
                raise ServerError(Problem("perf_analyzer failed:\n      " + "\n      ".join(tail),
                                          hint="the command is in Triton/profiling/<model>/perf_analyzer.txt"))
            row = next(csv.DictReader(report.read_text().splitlines()))
        return Result(int(row["Concurrency"]), protocol, float(row["Inferences/Second"]),
                      float(row["p50 latency"]), float(row["p90 latency"]), float(row["p99 latency"]),
                      f"time windows of {interval_ms} ms did not settle: {COUNT_WINDOW}-request windows" if unsettled
                      else "")

    def _bounded(self, args: list[str], limit: float) -> subprocess.CompletedProcess[str]:
        try:
            return self.run(args, timeout=limit)
        except subprocess.TimeoutExpired as err:
            said = (err.stdout or b"").decode(errors="replace") if isinstance(err.stdout, bytes) else (err.stdout or "")
            last = (said.strip().splitlines() or [""])[-1]  # what it printed last
            raise RanAway(Problem(f"perf_analyzer ran past {limit:.0f} s and was stopped (RUNAWAY in "
                                  f"compiler/profiling/perf_analyzer.py): {last}"), limit) from None


def flag_value(args: list[str], *names: str) -> str | None:
    """The value a perf_analyzer command gives the first of `names` it has (-m, --input-data, -b, ...), or None."""
    for name in names:
        if name in args[:-1]:
            return args[args.index(name) + 1]
    return None


def _trials(args: list[str]) -> int:
    """The most windows perf_analyzer measures, from --max-trials/-r (its default is 10)."""
    return int(flag_value(args, "--max-trials", "-r") or 10)


def _retarget(args: list[str], url: str, protocol: str) -> list[str]:
    out = []
    skip = False
    for part in args:
        if skip:
            skip = False
            continue
        if part in ("-u", "-i"):
            skip = True
            continue
        out.append(part)
    return [*out, "-u", url, "-i", protocol]


def locate(cache: Path = CACHE) -> PerfAnalyzer:
    """perf_analyzer extracted from the tritonclient wheel, with its libraries; ServerError when missing."""
    from compiler.server.distribution import pytriton_root

    folder = cache / f"perf_analyzer-{VERSION}"
    binary = folder / "perf_analyzer"
    if not binary.is_file():
        try:
            wheel = tritonclient_wheel(VERSION)
        except SchemaUnavailable as err:
            raise ServerError(Problem(f"perf_analyzer is not available: {err}", hint="run `make setup`")) from None
        with zipfile.ZipFile(wheel) as archive:
            inner = next((n for n in archive.namelist() if n.endswith("/bin/perf_analyzer")), None)
            if inner is None:
                raise ServerError(Problem(f"{wheel.name} carries no perf_analyzer"))
            folder.mkdir(parents=True, exist_ok=True)
            partial = folder / f".perf_analyzer.{os.getpid()}"
            partial.write_bytes(archive.read(inner))
            partial.chmod(partial.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
            os.replace(partial, binary)  # whole or absent, for a test worker starting it meanwhile
    libs = pytriton_root().parent / "nvidia_pytriton.libs"
    links = folder / "lib"
    links.mkdir(exist_ok=True)
    for plain, pattern in LIBRARIES.items():
        found = sorted(libs.glob(pattern))
        if not found:
            raise ServerError(Problem(f"perf_analyzer needs {plain}, which {libs} does not hold",
                                      hint="reinstall nvidia-pytriton==0.7.0, or install Debian's libb64-0d and "
                                           "the nvidia-cuda-runtime-cu12 package"))
        link = links / plain
        if link.resolve() == found[0].resolve():
            continue
        # replaced in one step: a perf_analyzer another test worker starts meanwhile must never find it missing
        # (one did, unlinked and not yet linked again: "libcudart.so.12: cannot open shared object file")
        partial = links / f".{plain}.{os.getpid()}"
        partial.unlink(missing_ok=True)
        partial.symlink_to(found[0])
        os.replace(partial, link)
    return PerfAnalyzer(binary, f"{links}:{libs}")
