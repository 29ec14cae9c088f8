"""Own one tritonserver process: start, wait until ready, stop, never leak it.

The server runs in its own process group with a parent-death signal, so it
(and the Python stubs it forks) dies with us even on SIGKILL; stop() sends
SIGINT to the group, then SIGKILL after a grace period. Its log is kept in a
file so that a failure can show the lines that matter.

    with TritonProcess(repository) as server:   # free ports, claimed (server/ports.py)
        server.wait_ready(timeout=300)
        print(server.model_states())

Each server is started with its own `--id`, and a wait counts only an answer from the server that says that id: a
port is free until tritonserver binds it, which is late, and another server found there is not ours. A server that
we gave free ports and that exits at start because one was taken meanwhile is started again on new ones.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import http.client
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from compiler.backend.nvidia.sources import NEWEST_BRANCH, Branch
from compiler.errors import LoadUnanswered, Problem, ServerError, ServerUnanswered
from compiler.server.distribution import ServerLayout, prepare_backends
from compiler.server.ports import Ports, in_use

#: seconds tritonserver gets to end after SIGINT before SIGKILL: it usually takes 3 s here; a whole `serve` then stops
#: inside the 30 s a container runtime waits after SIGTERM (Kubernetes' default terminationGracePeriodSeconds)
STOP_GRACE_S = 20.0
MAX_PORT_MOVES = 3  # a server that keeps finding its new ports taken has another problem
#: seconds a server that closed a connection gets to be reaped before it is said to still run (a fresh-clone run saw
#: the closed connection of a killed server before its exit)
EXIT_GRACE_S = 2.0
#: seconds unload_model waits for an unload to end once the model is no longer READY (see there)
UNLOAD_SETTLE_S = 10.0

#: what a request to a server that is not up (or not ours) raises: refused, reset, timed out, garbled
_NO_ANSWER = (OSError, http.client.HTTPException)

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


@dataclass(frozen=True)
class ModelState:
    name: str
    version: str
    state: str
    reason: str

    @property
    def described(self) -> str:
        """The state, with Triton's reason when the model is not READY (UNAVAILABLE: unloaded)."""
        return self.state + (f": {self.reason}" if self.reason and self.state != "READY" else "")


class TritonProcess:
    def __init__(
        self,
        repository: Path | str,
        ports: Ports | None = None,
        host: str = "127.0.0.1",
        explicit_models: bool = False,
        extra_args: list[str] | None = None,
        model_config_name: str | None = None,
        pytorch_backend: Branch | None = None,
    ) -> None:
        # a local folder, or object storage as tritonserver reads it (s3://host:port/bucket/path)
        self.repository: Path | str = repository if "://" in str(repository) else Path(repository).resolve()
        self.ports = ports or Ports.free(host)
        #: we chose the ports, so we may choose others when one is taken before the server binds it
        self._ports_ours = ports is None
        self.host = host
        #: `--id`, which the server answers at /v2: an answer without it comes from another server on our port
        self.server_id = f"triton-compiler-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.explicit_models = explicit_models
        self.extra_args = list(extra_args or [])
        self.model_config_name = model_config_name
        #: the branch of NVIDIA's PyTorch backend that serves pytorch_libtorch and torch_aoti models
        self.pytorch_backend = pytorch_backend or NEWEST_BRANCH
        self._workdir = Path(tempfile.mkdtemp(prefix="tritonserver-"))
        self.log_path = self._workdir / "tritonserver.log"
        #: the server's $TMPDIR, removed by stop()
        self.scratch = self._workdir / "tmp"
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self._log_cited = False  # a failure message named the log: keep it after stop()
        self.layout: ServerLayout | None = None
        self.watch: Any = None  # a StubWatch, while embedded_server supervises this server
        self.killed = False  # stop() needed SIGKILL: tritonserver had not ended STOP_GRACE_S after SIGINT
        self._moves = 0  # restarts on new ports (see _moved_to_free_ports)
        self.relaunches = 0  # starts again after an exit of its own (relaunch(): server/supervisor.py)
        self.supervisor: Any = None  # a Supervisor, while embedded_server supervises this server
        #: every model load_model loaded and no unload since, with the config and files it was given: a restarted
        #: server has none of them, and the supervisor loads again those the repository's list does not give it
        #: (embedded_server: a model loaded later, or with a config or files of its own)
        self.loaded_with: dict[str, tuple[dict[str, Any] | None, dict[str, bytes] | None]] = {}

    # -- lifecycle -----------------------------------------------------------------
    def command(self) -> list[str]:
        assert self.layout is not None
        args = [
            str(self.layout.tritonserver),
            f"--model-repository={self.repository}",
            f"--backend-directory={self.layout.backend_directory}",
            f"--http-port={self.ports.http}",
            f"--grpc-port={self.ports.grpc}",
            f"--metrics-port={self.ports.metrics}",
            f"--id={self.server_id}",
            f"--http-address={self.host}",
            f"--grpc-address={self.host}",
            f"--metrics-address={self.host}",
            "--allow-gpu-metrics=false",
            "--strict-readiness=true",
            "--log-verbose=0",
        ]
        if self.explicit_models:
            args.append("--model-control-mode=explicit")
        if self.model_config_name:
            args.append(f"--model-config-name={self.model_config_name}")
        return args + self.extra_args

    def start(self) -> TritonProcess:
        if self._ports_ours:
            while any(in_use(self.host, port) for _, _, port in self.ports.labelled()):
                self.ports = Ports.free(self.host)
        self.ports.check_available(self.host)
        self.layout = prepare_backends(self._workdir, self.pytorch_backend)
        self._launch()
        return self

    def _launch(self) -> None:
        assert self.layout is not None
        if self._log_file is not None:
            self._log_file.close()
        log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self._log_file = log
        # torch extracts each .pt2 it loads into $TMPDIR/aotinductor_* (100 MB for ResNet-50) and leaves it when the
        # server is killed; inside the working folder, stop() removes them with the rest
        self.scratch.mkdir(exist_ok=True)
        self._process = subprocess.Popen(
            self.command(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**self.layout.environment(), "TMPDIR": str(self.scratch)},
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )

    def relaunch(self) -> None:
        """Start the server again, on the same repository, ports and arguments, after it exited on its own. The log
        of the run that ended is kept beside the new one (tritonserver.<n>.log)."""
        if self.running():
            raise ServerError(Problem("tritonserver still runs; relaunch() is for a server that exited"))
        self.relaunches += 1
        if self.log_path.is_file():
            self.log_path.rename(self.log_path.with_name(f"tritonserver.{self.relaunches}.log"))
        self._launch()

    def _moved_to_free_ports(self) -> bool:
        """After the server exited at start: if it found one of the ports we chose taken, start it again on new
        ones (its log then starts afresh) and say so."""
        if not self._ports_ours or self._moves >= MAX_PORT_MOVES:
            return False
        log = self.log_text()
        taken = [port for _, _, port in self.ports.labelled() if f":{port}' already in use" in log]
        if not taken:
            return False
        self._moves += 1
        self.ports = Ports.free(self.host)
        self._launch()
        return True

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def returncode(self) -> int | None:
        """tritonserver's exit status once it has exited (negative: the signal that ended it), else None."""
        return self._process.poll() if self._process is not None else None

    def _exits_within(self, seconds: float) -> bool:
        """Whether the server has exited, or does within `seconds`: a server killed mid-request closes its sockets
        before the kernel lets us reap it, so a closed connection can come first."""
        if self._process is None:
            return True
        try:
            self._process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            return False
        return True

    def stop(self, grace: float = STOP_GRACE_S) -> int | None:
        """SIGINT to the whole group, then SIGKILL after `grace` seconds; returns the exit code (None if even
        SIGKILL did not end it in 10 s). `killed` says whether SIGINT was not enough. The temporary folder
        (backends, log) is removed, except the log when a failure message named it."""
        process = self._process
        if process is None:
            self._remove_workdir()
            return None
        if process.poll() is None:
            self._signal_group(signal.SIGINT)
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.killed = True
                self._signal_group(signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=10)
        self._signal_group(signal.SIGKILL)  # stubs left behind by a crash
        if self._log_file is not None:
            self._log_file.close()
        self._remove_workdir()
        return process.returncode

    def _remove_workdir(self) -> None:
        if self._log_cited:
            for item in self._workdir.iterdir():
                if item.is_dir():
                    shutil.rmtree(item, ignore_errors=True)
                elif item != self.log_path:
                    item.unlink(missing_ok=True)
        else:
            shutil.rmtree(self._workdir, ignore_errors=True)

    def _signal_group(self, sig: int) -> None:
        assert self._process is not None
        try:
            os.killpg(self._process.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def __enter__(self) -> TritonProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- talking to it ----------------------------------------------------------------
    @property
    def http_url(self) -> str:
        return f"{self.host}:{self.ports.http}"

    @property
    def grpc_url(self) -> str:
        return f"{self.host}:{self.ports.grpc}"

    def client(self, protocol: str) -> tuple[Any, Any]:
        """(a tritonclient client of this server over `protocol`, "http" or "grpc"; its tritonclient module)."""
        if protocol == "http":
            import tritonclient.http as http_module

            return http_module.InferenceServerClient(self.http_url, network_timeout=300), http_module
        import tritonclient.grpc as grpc_module

        return grpc_module.InferenceServerClient(self.grpc_url), grpc_module

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None, timeout: float = 5.0) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"http://{self.http_url}{path}", data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as err:
            raw = err.read()
            try:
                return err.code, json.loads(raw) if raw else None
            except ValueError:
                return err.code, raw.decode(errors="replace")

    def wait_live(self, timeout: float = 120.0) -> None:
        self._wait("/v2/health/live", timeout)

    def wait_ready(self, timeout: float = 600.0) -> None:
        self._wait("/v2/health/ready", timeout)

    def _wait(self, path: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            if not self.running() and not self._moved_to_free_ports():
                raise ServerError(self._failure("tritonserver exited before it was ready"))
            try:
                status, _ = self._request("GET", path, timeout=2.0)
                if status == 200 and self._answers_as_ours():
                    if self._endpoints_started():
                        return
                    delay = 0.02  # ours, and HTTP is up: the metrics port follows within ms (or the server exits)
            except _NO_ANSWER:
                pass  # not up yet, or another program answers on the port (then our server exits, and we say so)
            if time.monotonic() > deadline:
                raise ServerError(self._failure(f"tritonserver was not ready within {timeout:.0f} s"))
            time.sleep(delay)
            delay = min(delay * 1.5, 1.0)

    def _endpoints_started(self) -> bool:
        """tritonserver binds gRPC, HTTP, then metrics, and exits when one is taken, a few ms after HTTP answers (and
        after its log says the metrics service started): the metrics port answering with Triton's metrics is the end
        of a start. A port taken by something else does not answer so."""
        if "--allow-metrics=false" in self.extra_args:
            return True
        try:
            with urllib.request.urlopen(f"http://{self.host}:{self.ports.metrics}/metrics", timeout=2.0) as response:
                return response.status == 200 and b"nv_" in response.read()
        except _NO_ANSWER:
            return False

    def _answers_as_ours(self) -> bool:
        status, metadata = self._request("GET", "/v2", timeout=2.0)
        return status == 200 and isinstance(metadata, dict) and metadata.get("name") == self.server_id

    def _ask(self, method: str, path: str, doing: str, body: dict[str, Any] | None = None, timeout: float = 5.0,
             model: str | None = None, unanswered: type[ServerUnanswered] = ServerUnanswered,
             late: str | None = None) -> tuple[int, Any]:
        """A request whose lost answer is a ServerUnanswered naming what we were `doing` (`late`: the words for a
        timeout), with the server's log kept and cited; an answer of any status is returned."""
        try:
            return self._request(method, path, body, timeout=timeout)
        except (TimeoutError, ConnectionError, urllib.error.URLError, http.client.HTTPException) as err:
            reason = err.reason if isinstance(err, urllib.error.URLError) else err
        if isinstance(reason, TimeoutError):
            message = late or f"tritonserver gave no answer {timeout:.0f} s after {doing}"
        else:
            state = "has exited" if self._exits_within(EXIT_GRACE_S) else "still runs"
            how = "refused" if isinstance(reason, ConnectionRefusedError) else "closed"
            message = f"tritonserver {how} the connection while {doing} ({type(reason).__name__}; the server {state})"
        raise unanswered(self._failure(message, model=model))

    def model_states(self) -> list[ModelState]:
        status, index = self._ask("POST", "/v2/repository/index", "listing its models", {})
        if status != 200:
            raise ServerError(Problem(f"repository index request failed ({status}): {index}"))
        return [
            ModelState(entry["name"], str(entry.get("version", "")), entry.get("state", ""), entry.get("reason", ""))
            for entry in index
        ]

    def load_model(self, name: str, config: dict[str, Any] | None = None, timeout: float = 600.0,
                   files: dict[str, bytes] | None = None) -> None:
        """Load one model (explicit model control), optionally with a config override and with its files in the
        request (`files`: "<version>/<file>" -> bytes; the model repository extension then loads it from those,
        not from the repository, and needs the config). tritonserver answers a load when it ends: one still
        unanswered at `timeout` is a model whose initialize() still runs, or a hung server."""
        body: dict[str, Any] = {}
        if config is not None:
            body = {"parameters": {"config": json.dumps(config)}}
        for path, data in (files or {}).items():
            body.setdefault("parameters", {})[f"file:{path}"] = base64.b64encode(data).decode("ascii")
        status, answer = self._ask("POST", f"/v2/repository/models/{name}/load", f"loading model '{name}'", body,
                                   timeout=timeout, model=name, unanswered=LoadUnanswered,
                                   late=f"model '{name}' had not loaded {timeout:.0f} s after its load request")
        if status != 200:
            message = answer.get("error") if isinstance(answer, dict) else answer
            raise ServerError(self._failure(f"model '{name}' failed to load: {message}", model=name))
        self.loaded_with[name] = (config, files)

    def unload_model(self, name: str, timeout: float = 120.0, settle: float = UNLOAD_SETTLE_S) -> None:
        """Unload one model (explicit model control): wait until the server no longer has it ready, and up to
        `settle` seconds more for the unload to end. tritonserver answers the request at once and unloads after it
        (UNLOADING, a second for a Python model here); a load of the same name meanwhile (a reload, the next check
        case) sometimes killed tritonserver 2.51 with signal 11. An unload that does not end (a stub that died with
        a request in flight stays UNLOADING for minutes) is left to run: a load of the name then works."""
        status, answer = self._ask("POST", f"/v2/repository/models/{name}/unload", f"unloading model '{name}'", {},
                                   timeout=timeout, model=name)
        if status != 200:
            message = answer.get("error") if isinstance(answer, dict) else answer
            raise ServerError(self._failure(f"model '{name}' failed to unload: {message}", model=name))
        self.loaded_with.pop(name, None)
        started = time.monotonic()
        while time.monotonic() < started + timeout:
            state = {s.name: s.state for s in self.model_states()}.get(name)
            if state != "READY" and (state != "UNLOADING" or time.monotonic() > started + settle):
                return
            time.sleep(0.1)
        raise ServerError(self._failure(f"model '{name}' was still loaded {timeout:.0f} s after its unload", model=name))

    def reload_model(self, name: str, config: dict[str, Any] | None = None, timeout: float = 600.0) -> None:
        """Unload, then load again: a load of a model that is loaded with the same config does nothing."""
        self.unload_model(name)
        self.load_model(name, config, timeout)

    def served_config(self, name: str) -> dict[str, Any]:
        status, config = self._ask("GET", f"/v2/models/{name}/config", f"reading the config of '{name}'", model=name)
        if status != 200:
            raise ServerError(Problem(f"could not read the served config of '{name}': {config}", model=name))
        return dict(config)

    # -- diagnostics --------------------------------------------------------------------
    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_lines_for(self, model: str | None = None, limit: int = 40) -> list[str]:
        lines = self.log_text().splitlines()
        noise = ("NVML", "DCGM", "dcgm", "libcuda", "CUDA driver", "cuda")
        relevant = [ln for ln in lines if not any(word in ln for word in noise)]
        if model:
            mine = [ln for ln in relevant if model in ln or " E" in ln[:2] or ln.startswith("E")]
            if mine:
                relevant = mine
        return relevant[-limit:]

    def _failure(self, message: str, model: str | None = None) -> Problem:
        self._log_cited = True
        tail = "\n".join("      " + ln for ln in self.log_lines_for(model))
        return Problem(
            f"{message}\n    tritonserver log ({self.log_path}):\n{tail}",
            model=model,
            hint="fix the model or config named above; `python -m compiler check` lints a repository",
        )
