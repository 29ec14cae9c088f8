"""Where the machine's cores go while a cell runs: CPU time per process from Linux's /proc, grouped by role.

Triton's statistics say how long each model computed, not what else ran on the same cores: the front end, a Python
step's stub process, the client. On a machine of two cores those decide how much is left for the model, so the bench
reads every process's CPU time (user + system, all its threads) before and after each served cell:

    before = cpu_snapshot(server.pid); ...run the load...; spent = cpu_snapshot(server.pid) - before  # a CpuSpent
    spent.seconds   # {"tritonserver": 21.9, "embed_tokenize (Python stub)": 0.8, "perf_analyzer": 0.3, ...}
    spent.wall_s    # the wall time between the two snapshots

Roles come from each process's command line (`role`): tritonserver itself (its front ends, batchers and C++
backends, models included), each Python-backend stub by the model it serves, perf_analyzer, and the rest of the
machine (the bench's own process, other users', a perf_analyzer the bench did not start). perf_analyzer ends before
the snapshot after its cell, so /proc no longer lists it: the time of the bench's children that ended (getrusage's
RUSAGE_CHILDREN; in a served cell that is perf_analyzer) counts as perf_analyzer's. Where /proc is missing (not
Linux) a snapshot is empty.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

PROC = Path("/proc")
SERVER = "tritonserver"
CLIENT = "perf_analyzer"
REST = "the rest"
#: The Python backend's stub: one process per model instance, its model's model.py on its command line.
STUB = "triton_python_backend_stub"
#: How a stub's role ends: '<model> (Python stub)'.
STUB_ROLE = " (Python stub)"


def role(argv: list[str]) -> str:
    """The role of a process with command line `argv`: tritonserver, '<model> (Python stub)', perf_analyzer, or the
    rest."""
    if not argv:
        return REST
    program = PurePosixPath(argv[0]).name
    if program == STUB:
        script = next((PurePosixPath(a) for a in argv[1:] if a.endswith(".py")), None)
        # <repository>/<model>/<version>/model.py
        return f"{script.parent.parent.name}{STUB_ROLE}" if script and len(script.parts) >= 3 else STUB
    if program == SERVER:
        return SERVER
    if program == CLIENT:
        return CLIENT
    return REST


#: A process in a snapshot: its pid and its start time (a pid the kernel gave again is another process). The bench's
#: ended children, together, are ENDED.
Process = tuple[int, int]
ENDED: Process = (0, 0)


@dataclass
class CpuSpent:
    """CPU seconds per role over `wall_s` seconds of wall time, on a machine of `cores` cores."""

    seconds: dict[str, float] = field(default_factory=dict)
    wall_s: float = 0.0
    cores: int = 1

    def __add__(self, other: CpuSpent) -> CpuSpent:
        names = {*self.seconds, *other.seconds}
        return CpuSpent({name: self.seconds.get(name, 0.0) + other.seconds.get(name, 0.0) for name in names},
                        self.wall_s + other.wall_s, max(self.cores, other.cores))

    def core_share(self, name: str) -> float:
        """How many cores `name` kept busy on average (0.9: 90% of one core)."""
        return self.seconds.get(name, 0.0) / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def idle(self) -> float:
        """The cores nobody used, on average."""
        return max(0.0, self.cores - sum(self.seconds.values()) / self.wall_s) if self.wall_s > 0 else 0.0


@dataclass(frozen=True)
class CpuSnapshot:
    """Each process's role and CPU seconds so far, at `at` on the monotonic clock. The difference of two counts the
    processes of the later one alone: a process that ended between them takes its time with it, instead of taking it
    out of its role's."""

    processes: dict[Process, tuple[str, float]]
    at: float
    cores: int

    def __sub__(self, earlier: CpuSnapshot) -> CpuSpent:
        spent: dict[str, float] = {}
        for key, (name, seconds) in self.processes.items():
            was = earlier.processes.get(key)
            spent[name] = spent.get(name, 0.0) + seconds - (was[1] if was else 0.0)
        return CpuSpent({name: s for name, s in spent.items() if s > 0}, self.at - earlier.at, self.cores)


def cpu_snapshot(server_pid: int | None = None, proc: Path = PROC) -> CpuSnapshot:
    """Every live process's CPU time so far, by role, and this process's ended children's as perf_analyzer's. Any
    other process that ends between two snapshots takes its time with it. perf_analyzer is this process's children
    only: one that another process started (another test worker's) is the rest. With `server_pid`, only that
    tritonserver and the stubs it started have their roles: another server on the machine (a test's, PyTriton's) is
    the rest."""
    if not proc.is_dir():
        return CpuSnapshot({}, time.monotonic(), os.cpu_count() or 1)
    ended = resource.getrusage(resource.RUSAGE_CHILDREN)
    processes = {ENDED: (CLIENT, ended.ru_utime + ended.ru_stime)}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            stat = (entry / "stat").read_text()
        except OSError:  # gone since the listing, or not ours to read
            continue
        # proc(5) after the name in parentheses (which may hold spaces), 0-based: 1 ppid, 11 utime, 12 stime (ticks),
        # 19 starttime
        fields = stat[stat.rindex(")") + 2:].split()
        found = role([a.decode(errors="replace") for a in argv if a])
        if found == CLIENT:
            found = found if int(fields[1]) == os.getpid() else REST
        elif server_pid is not None and found != REST:
            ours = int(entry.name) == server_pid if found == SERVER else int(fields[1]) == server_pid
            found = found if ours else REST
        processes[(int(entry.name), int(fields[19]))] = (found, (int(fields[11]) + int(fields[12])) / tick)
    return CpuSnapshot(processes, time.monotonic(), len(os.sched_getaffinity(0)))
