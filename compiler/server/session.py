"""A running embedded server with every model of a repository loaded.

    with embedded_server(Path("Triton/models")) as (server, models):
        print(status_table(server.model_states()))
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from compiler.backend.nvidia.sources import Branch, branch_for
from compiler.errors import Problem, ServerError
from compiler.releases import DEFAULT_RELEASE
from compiler.repository import layout
from compiler.repository.record import built_from
from compiler.server.ports import Ports
from compiler.server.process import ModelState, TritonProcess
from compiler.server.served import RepositoryModel, read_repository
from compiler.server.supervisor import Supervisor
from compiler.server.watch import StubWatch


@contextmanager
def embedded_server(
    repository: Path,
    ports: Ports | None = None,
    host: str = "127.0.0.1",
    pytorch_backend: Branch | None = None,
    ready_timeout: float = 600.0,
    variant: str | None = None,
    echo: Callable[[str], None] = lambda _: None,
    only: Collection[str] | None = None,
    supervise: bool = True,
) -> Iterator[tuple[TritonProcess, list[RepositoryModel]]]:
    """PyTorch models are served by NVIDIA's PyTorch backend of the branch that serves the repository's target
    release (its build records say it; the newest release's otherwise), or `pytorch_backend` where given.
    `variant` starts tritonserver with --model-config-name, so models load configs/<variant>.pbtxt where they
    have one and config.pbtxt elsewhere. `only` loads just the models it names (a soak of one model need not pay
    for the others' stubs and packages); the models returned are those loaded. While it runs, a model whose stub
    process dies is reloaded and `echo` says so (server/watch.py); `server.watch.deaths` lists them. With
    `supervise`, a tritonserver that exits on its own is started again with the same models (server/supervisor.py;
    `server.supervisor.exits` lists the exits)."""
    every = read_repository(repository, variant=variant)
    missing = sorted(set(only or ()) - {m.name for m in every})
    if missing:
        raise ServerError(Problem(f"{repository} has no model {', '.join(missing)}", hint="`make repo` builds it"))
    models = [m for m in every if only is None or m.name in only]
    branch = pytorch_backend or branch_for(built_from(Path(repository))[1] or DEFAULT_RELEASE)
    with tempfile.TemporaryDirectory(prefix="served-") as scratch, \
            TritonProcess(shadow_repository(Path(repository), every, Path(scratch)), ports=ports, host=host,
                          explicit_models=True, pytorch_backend=branch, model_config_name=variant) as server:
        server.wait_live(timeout=120)

        def load() -> list[Problem]:
            ensembles = [m for m in models if m.config.platform == layout.ENSEMBLE_PLATFORM]
            problems = _load_together(server, [m for m in models if m not in ensembles], ready_timeout)
            problems += _load_together(server, ensembles, ready_timeout)  # an ensemble after its steps
            listed = {m.name for m in models}
            for name, (config, files) in list(server.loaded_with.items()):  # after a restart: those loaded since
                if name not in listed or config is not None or files:
                    problems += _load_one(server, name, ready_timeout, config, files)
            return problems

        problems = load()
        if problems:
            raise ServerError(problems)
        server.wait_ready(timeout=ready_timeout)
        supervisor = Supervisor(server, load, echo).start() if supervise else None
        server.supervisor = supervisor
        try:
            with StubWatch(server, {m.name: None for m in models}, echo) as watch:
                server.watch = watch
                yield server, models
        finally:
            if supervisor is not None:
                supervisor.stop()


def _load_together(server: TritonProcess, models: list[RepositoryModel], timeout: float) -> list[Problem]:
    """Load requests sent side by side, as many as the machine has cores: tritonserver starts the models' stubs in
    parallel (one at a time, a TorchScript model took 3.3 s to load here, most of it the stub importing torch).
    Their problems come back in the models' order."""
    with ThreadPoolExecutor(max_workers=max(1, min(len(models), os.cpu_count() or 1))) as pool:
        found = pool.map(lambda model: _load_one(server, model.name, timeout), models)
        return [problem for problems in found for problem in problems]


def _load_one(server: TritonProcess, name: str, timeout: float, config: dict[str, Any] | None = None,
              files: dict[str, bytes] | None = None) -> list[Problem]:
    """Load one model (with the config and files given, if any); what went wrong as problems, not raised."""
    try:
        server.load_model(name, config, timeout=timeout, files=files)
    except ServerError as err:
        return err.problems
    return []


def shadow_repository(repository: Path, models: list[RepositoryModel], folder: Path) -> Path:
    """The repository as this machine's server loads it: every file linked from the original, and the config of a
    model that needs an override (served.py: a GPU instance here, or torch_aoti on the 24.10 server) written in its
    place. tritonserver then sees one consistent repository, so that an ensemble whose steps need overrides loads
    (it reads its steps' configs from disk); the original files are never touched."""
    from google.protobuf import json_format
    from tritonclient.grpc import model_config_pb2 as pb

    from compiler.triton_config import to_text

    shadow = folder / repository.name
    shadow.mkdir()
    for model in models:
        source = repository.resolve() / model.name
        if model.override is None:
            (shadow / model.name).symlink_to(source, target_is_directory=True)
            continue
        target = shadow / model.name
        target.mkdir()
        chosen = Path(model.config_file)
        for item in source.iterdir():
            if item.name != chosen.parts[0]:
                (target / item.name).symlink_to(item, target_is_directory=item.is_dir())
        if len(chosen.parts) > 1:  # configs/<variant>.pbtxt: the other variants stay linked
            (target / chosen.parts[0]).mkdir()
            for item in (source / chosen.parts[0]).iterdir():
                if item.name != chosen.name:
                    (target / chosen.parts[0] / item.name).symlink_to(item)
        config = json_format.ParseDict(model.override, pb.ModelConfig(), ignore_unknown_fields=True)
        (target / chosen).write_text(to_text(config))
    return shadow


def status_table(states: list[ModelState], server: TritonProcess | None = None) -> str:
    """The READY table; with `server`, a last line naming the PyTorch backend its models run on."""
    rows = [("Model", "Version", "Status")] + [
        (s.name, s.version, s.described) for s in states
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    lines = [rule]
    for number, row in enumerate(rows):
        lines.append("| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths)) + " |")
        if number == 0:
            lines.append(rule)
    lines.append(rule)
    if server is not None and server.layout is not None:
        lines.append(f"PyTorch models: {server.layout.pytorch.label}")
    if server is not None and server.supervisor is not None:
        lines.append(server.supervisor.summary())
    return "\n".join(lines)
