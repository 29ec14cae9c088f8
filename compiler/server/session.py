"""A running embedded server with every model of a repository loaded.

    with embedded_server(Path("Triton/models")) as (server, models):
        print(status_table(server.model_states()))
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from compiler.errors import Problem, ServerError
from compiler.server.ports import Ports
from compiler.server.process import ModelState, TritonProcess
from compiler.server.served import RepositoryModel, read_repository
from compiler.server.watch import StubWatch


@contextmanager
def embedded_server(
    repository: Path,
    ports: Ports | None = None,
    host: str = "127.0.0.1",
    backends: Path | None = None,
    ready_timeout: float = 600.0,
    variant: str | None = None,
    echo: Callable[[str], None] = lambda _: None,
) -> Iterator[tuple[TritonProcess, list[RepositoryModel]]]:
    """`variant` starts tritonserver with --model-config-name, so models load configs/<variant>.pbtxt where they
    have one and config.pbtxt elsewhere. While it runs, a model whose stub process dies is reloaded and `echo`
    says so (server/watch.py); `server.watch.deaths` lists them."""
    models = read_repository(repository, variant=variant)
    with TritonProcess(repository, ports=ports, host=host, explicit_models=True, backends=backends,
                       model_config_name=variant) as server:
        server.wait_live(timeout=120)
        problems: list[Problem] = []
        for model in models:
            try:
                server.load_model(model.name, model.override, timeout=ready_timeout)
            except ServerError as err:
                problems.extend(err.problems)
        if problems:
            raise ServerError(problems)
        server.wait_ready(timeout=ready_timeout)
        with StubWatch(server, {m.name: m.override for m in models}, echo) as watch:
            server.watch = watch
            yield server, models


def status_table(states: list[ModelState]) -> str:
    rows = [("Model", "Version", "Status")] + [
        (s.name, s.version, s.state + (f": {s.reason}" if s.reason and s.state != "READY" else "")) for s in states
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    lines = [rule]
    for number, row in enumerate(rows):
        lines.append("| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths)) + " |")
        if number == 0:
            lines.append(rule)
    lines.append(rule)
    return "\n".join(lines)
