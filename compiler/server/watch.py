"""Watch the Python-backend stub processes of a server we started, and bring back a model whose stub died.

Every Python-backend model (the pipelines' steps: tokenizer, image decoder, pooling, labels) runs each instance in
a stub process that tritonserver starts. When one dies (the OOM killer, a crash in a native library), tritonserver
2.51 answers every later request to that model with 500 "Stub process ... is not healthy" while it still reports
the model READY. The watch polls the server's process group for its stubs; when one goes, it reloads that model
(explicit model control: the same config override it was loaded with), says so, and counts it. PyTorch models run
inside tritonserver itself (NVIDIA's C++ backend): a crash there ends the server, which serve's supervisor sees.

    watch = StubWatch(server, {"embed_tokenize": None}, echo)
    with watch:
        ...                        # watch.deaths: what died
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compiler.errors import ServerError

STUB = "triton_python_backend_stub"
_INSTANCE = re.compile(r"^(?P<model>.+)_\d+_\d+$")


@dataclass(frozen=True)
class Death:
    model: str
    instance: str
    reloaded: bool
    detail: str  # the reload's error, or how long it took

    def line(self) -> str:
        outcome = f"reloaded ({self.detail})" if self.reloaded else f"reload failed: {self.detail}"
        return f"model '{self.model}': its stub process {self.instance} died; {outcome}"


def model_of_instance(instance: str) -> str:
    """`bert_0_0` -> `bert` (Triton names instances <model>_<group>_<index> unless a group is named)."""
    match = _INSTANCE.match(instance)
    return match.group("model") if match else instance


def stubs_of(group: int) -> dict[str, int]:
    """Instance name -> pid of every living stub in process group `group` (zombies count as dead)."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(stat[2]) != group or stat[0] == "Z" or not argv or not argv[0].endswith(STUB.encode()):
            continue
        words = [a.decode(errors="replace") for a in argv if a]
        if len(words) >= 3:
            found[words[-2]] = int(proc.name)  # ... <instance name> <model's runtime folder>
    return found


class StubWatch:
    def __init__(self, server: Any, overrides: dict[str, dict[str, Any] | None], echo: Callable[[str], None],
                 interval: float = 0.5) -> None:
        self.server = server
        self.overrides = overrides
        self.echo = echo
        self.interval = interval
        self.deaths: list[Death] = []
        self._known: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one look at a time; paused() waits for the one under way
        self._paused = False

    def __enter__(self) -> StubWatch:
        self._known = self._current()
        self._thread = threading.Thread(target=self._run, name="stub-watch", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _current(self) -> dict[str, int]:
        return stubs_of(self.server.pid) if self.server.pid else {}

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            supervisor = getattr(self.server, "supervisor", None)
            if not self.server.running() or (supervisor is not None and supervisor.restarting.locked()):
                self._known = {}  # the server's stubs went with it: after a restart, its new stubs are the baseline
                continue
            with self._lock:
                if not self._paused:
                    self.check()

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Models unloaded and loaded on purpose (bench's warmup rows) are not deaths: no look while paused, and
        the stubs alive afterwards are the new baseline."""
        with self._lock:
            self._paused = True
        try:
            yield
        finally:
            with self._lock:
                self._known = self._current()
                self._paused = False

    def check(self) -> list[Death]:
        """One look: every instance that was alive and is gone has its model reloaded; returns the new deaths."""
        current = self._current()
        gone = [name for name, pid in self._known.items() if current.get(name) != pid and not _alive(pid)]
        new: list[Death] = []
        for model in sorted({model_of_instance(name) for name in gone}):
            instances = [name for name in gone if model_of_instance(name) == model]
            started = time.monotonic()
            try:
                self.server.reload_model(model, self.overrides.get(model))
                death = Death(model, ", ".join(instances), True, f"{time.monotonic() - started:.1f} s")
            except ServerError as err:
                death = Death(model, ", ".join(instances), False, err.problems[0].message.splitlines()[0])
            self.deaths.append(death)
            new.append(death)
            self.echo(death.line())
        self._known = self._current() if gone else {**self._known, **current}
        return new


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
