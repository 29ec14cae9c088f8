"""Supervise a tritonserver we started: when it exits on its own, say why and start it again.

NVIDIA's PyTorch backend runs every model inside tritonserver, so a model that aborts (a kernel's bounds check, the
OOM killer) ends the whole server; so does a request that reaches a crash of tritonserver itself (class_count on a
TYPE_STRING output before 25.07). The supervisor sees the exit, names it (the signal or the exit status, and the
tail of the server's log), and starts the server again on the same repository and ports, loads the same models,
and waits until they are READY: after 1 s, then 2, 4, 8, 16 s for exits that follow each other, and not more than
LIMIT times in WINDOW_S. Then it gives up, and says so.

    supervisor = Supervisor(server, reload, echo).start()
    supervisor.exits          # each exit: why, the log's tail, whether the server came back and how long it took
    supervisor.gave_up        # None, or why it stopped restarting
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from compiler.errors import Problem, ServerError

#: seconds before each restart, for exits that come one after another (the last one repeats)
BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 16.0)
#: at most this many restarts in WINDOW_S: a server that cannot stay up has a problem a restart does not mend
LIMIT = 5
WINDOW_S = 600.0


def why_it_exited(status: int | None) -> str:
    """'signal 6 (SIGABRT)', 'exit status 1', or 'an unknown cause' (not reaped)."""
    if status is None:
        return "an unknown cause"
    if status < 0:
        try:
            return f"signal {-status} ({signal.Signals(-status).name})"
        except ValueError:
            return f"signal {-status}"
    return f"exit status {status}"


@dataclass
class Exit:
    at: float  # time.time() when it was seen
    why: str
    log_tail: list[str]
    restarted: bool = False
    took_s: float | None = None  # from the exit to the models READY again
    error: str = ""  # why the restart failed

    def line(self) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(self.at))
        outcome = (f"serving again after {self.took_s:.1f} s" if self.restarted else
                   f"not restarted: {self.error}" if self.error else "restarting")
        return f"tritonserver exited at {stamp} ({self.why}); {outcome}"


@dataclass
class Supervisor:
    server: Any  # a TritonProcess
    reload: Callable[[], Sequence[Problem]]  # loads the models again; their problems
    echo: Callable[[str], None]
    backoff: tuple[float, ...] = BACKOFF_S
    limit: int = LIMIT
    window_s: float = WINDOW_S
    interval: float = 0.2
    exits: list[Exit] = field(default_factory=list)
    gave_up: str | None = None
    #: held while the server restarts: a caller that must not see a half-started server (the stub watch) waits
    restarting: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Supervisor:
        self._thread = threading.Thread(target=self._run, name="tritonserver-supervisor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Before the server is stopped on purpose: that exit is not one to restart."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)

    @property
    def restarts(self) -> int:
        return sum(1 for e in self.exits if e.restarted)

    def summary(self) -> str:
        if not self.exits:
            return "tritonserver restarts: 0"
        return f"tritonserver restarts: {self.restarts} (last: {self.exits[-1].line()})"

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            if self.gave_up is None and not self.server.running() and not self._stop.is_set():
                self._handle()

    def _handle(self) -> None:
        with self.restarting:
            status = self.server.returncode
            seen = time.time()
            exit_ = Exit(seen, why_it_exited(status), self.server.log_lines_for(None, 15))
            self.exits.append(exit_)
            self.echo(exit_.line() + "; its last log lines:\n" + "\n".join("    " + ln for ln in exit_.log_tail))
            recent = [e for e in self.exits if e.at > seen - self.window_s]
            if len(recent) > self.limit:
                exit_.error = self.gave_up = (f"{len(recent)} exits in {self.window_s:.0f} s, more than the "
                                              f"{self.limit} restarts allowed")
                self.echo(f"tritonserver: {self.gave_up}; not restarted")
                return
            if self._stop.wait(self.backoff[min(len(recent), len(self.backoff)) - 1]):
                return
            try:
                self.server.relaunch()
                self.server.wait_live(timeout=120)
                problems = list(self.reload())
                if problems:
                    raise ServerError(problems)
                self.server.wait_ready(timeout=600)
            except ServerError as err:
                exit_.error = err.problems[0].message.splitlines()[0]
                if self.server.running():  # up, but without its models: another restart would not mend that
                    self.gave_up = f"the restarted server did not load its models: {exit_.error}"
                self.echo(exit_.line())
                return  # down again: the next look restarts it
            exit_.restarted, exit_.took_s = True, time.time() - seen
            self.echo(exit_.line())
