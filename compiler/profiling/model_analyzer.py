"""Model Analyzer on a built model: its sweep of instance counts, max batch sizes and queue delays, run against the
embedded tritonserver, and the best configuration written back as a manifest snippet (`variants:`).

Model Analyzer (triton-model-analyzer, which pulls numpy 2) lives in its own venv, made on first use and cached
(TRITON_COMPILER_CACHE/model-analyzer-<version>-py<version>). It runs in its local launch mode: it starts the
wheel's tritonserver itself with our backend directory, loads each configuration it writes, and measures it with
our perf_analyzer 2.51. The sweep is the build's own `Triton/profiling/<model>/model_analyzer.yaml`; a model whose
config the embedded server cannot load as it is (torch_aoti, KIND_GPU here) is profiled from the same override
`serve` loads.

    result = profile(Path("Triton/models"), "bert", quick=True, progress=print)
    result.best.instance_count, result.snippet   # 1, Path(".../model_analyzer/variants.yaml")
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from ruamel.yaml import YAML
from tritonclient.grpc import model_config_pb2 as pb

from compiler.cache import InstallFailed, cached_venv, venv_folder
from compiler.errors import Problem, ServerError
from compiler.profiling.writer import profiling_folder, yaml_text
from compiler.repository import layout

VERSION = "1.58.0"
REQUIREMENT = f"triton-model-analyzer=={VERSION}"
#: The quick sweep (a test, a first look): two concurrencies, the model's own max batch size, two delays and two
#: instance counts.
QUICK = {"concurrency": [1, 2], "delays": [0, 100], "counts": [1, 2]}


@dataclass(frozen=True)
class Measured:
    """One row of Model Analyzer's metrics-model-inference.csv, with the settings of the configuration it ran."""

    config: str  # <model>_config_default is the build's own configuration; <model>_config_N are the sweep's
    concurrency: int
    throughput: float  # inferences per second
    p99_ms: float
    instance_count: int
    max_batch_size: int
    max_queue_delay_microseconds: int | None  # None: no dynamic batching

    @property
    def is_default(self) -> bool:
        return self.config.endswith("_config_default")


@dataclass(frozen=True)
class ProfileResult:
    best: Measured  # the highest throughput of the measurements that satisfy Model Analyzer's constraints
    snippet: Path  # the manifest snippet (variants: profiled: ...)
    reports: Path  # Model Analyzer's export folder (CSV, HTML reports)
    measurements: tuple[Measured, ...]  # every row, in Model Analyzer's order

    @property
    def rows(self) -> int:
        """How many measurements Model Analyzer made."""
        return len(self.measurements)


def analyzer_binary(progress: Callable[[str], None]) -> Path:
    folder = venv_folder(f"model-analyzer-{VERSION}")
    try:
        python = cached_venv(folder, [REQUIREMENT], f"Model Analyzer {VERSION}'s venv", progress)
    except InstallFailed as err:
        raise ServerError(Problem(f"could not install {REQUIREMENT}: {err.errors[-300:]}",
                                  hint="it comes from the package index")) from None
    return python.parent / "model-analyzer"


def profile(repository: Path, model: str, quick: bool = False, strict_stability: bool = False,
            concurrencies: tuple[int, ...] | None = None,
            progress: Callable[[str], None] = lambda _: None) -> ProfileResult:
    """`strict_stability`: keep perf_analyzer's own rule (3 windows within 10%), for a quiet machine; without it
    each measurement averages its windows whatever their spread, as `make bench` does (LOOSE_STABILITY).
    `concurrencies`: instead of the generated (or quick) ones."""
    from compiler.profiling.perf_analyzer import LOOSE_STABILITY, locate
    from compiler.server.distribution import prepare_backends
    from compiler.server.served import read_repository

    repository = Path(repository).resolve()
    generated = profiling_folder(repository) / model / "model_analyzer.yaml"
    if not generated.is_file():
        raise ServerError(Problem(f"no {generated}", model=model, hint="`make repo` writes it"))
    served = next((m for m in read_repository(repository) if m.name == model), None)
    if served is None:
        raise ServerError(Problem(f"{repository} has no model '{model}'", model=model))
    work = generated.parent / "model_analyzer"
    shutil.rmtree(work, ignore_errors=True)
    models = work / "models"
    shutil.copytree(repository / model, models / model, ignore=shutil.ignore_patterns(layout.VARIANTS_DIR))
    if served.override is not None:  # what `serve` loads: the same model file, a config the embedded server knows
        config = json_format.ParseDict(served.override, pb.ModelConfig())
        from compiler.triton_config import to_text

        layout.config_file(models / model).write_text(to_text(config))
    base = YAML(typ="safe").load(generated.read_text())
    settings = base["profile_models"][model]
    settings["cpu_only"] = True  # this machine has no GPU; the embedded server runs CPU instances
    flags = settings.setdefault("perf_analyzer_flags", {})
    if not strict_stability:
        flags.update(LOOSE_STABILITY)
    if "input-data" in flags:  # written relative to where the build ran; Model Analyzer runs in `work`
        flags["input-data"] = str(Path(flags["input-data"]).resolve())
    if quick:
        settings["parameters"]["concurrency"] = QUICK["concurrency"]
        sweep = settings.get("model_config_parameters")
        if sweep:
            sweep["max_batch_size"] = [max(sweep["max_batch_size"])]
            sweep["dynamic_batching"] = {"max_queue_delay_microseconds": QUICK["delays"]}
            sweep["instance_group"] = [[{"kind": "KIND_CPU", "count": c}] for c in QUICK["counts"]]
    if concurrencies:
        settings["parameters"]["concurrency"] = list(concurrencies)
    layout_ = prepare_backends(work / "server")
    analyzer = locate()
    libraries = f"{analyzer.library_path}:{layout_.library_path}"
    environment = layout_.environment({})
    from compiler.server.ports import Ports

    ports = Ports.free()  # never 8000-8002, which a `make serve` may hold
    config = {
        **base,
        "triton_http_endpoint": f"localhost:{ports.http}",
        "triton_grpc_endpoint": f"localhost:{ports.grpc}",
        "triton_metrics_url": f"http://localhost:{ports.metrics}/metrics",
        "model_repository": str(models),
        "profile_models": {model: settings},
        "triton_launch_mode": "local",
        "triton_server_path": str(layout_.tritonserver),
        "triton_server_flags": {"backend-directory": str(layout_.backend_directory), "allow-gpu-metrics": "false"},
        "triton_server_environment": {"LD_LIBRARY_PATH": libraries,
                                      "PATH": f"{environment['PATH']}:{os.environ.get('PATH', '')}"},
        "perf_analyzer_path": str(analyzer.binary),
        "output_model_repository_path": str(work / "configs"),
        "override_output_model_repository": True,
        "export_path": str(work / "reports"),
        "checkpoint_directory": str(work / "checkpoints"),
    }
    config_path = work / "model_analyzer.yaml"
    config_path.write_text(yaml_text(config))
    binary = analyzer_binary(progress)
    progress(f"model-analyzer profile -f {config_path} (local launch of the embedded tritonserver)")
    log = work / "model_analyzer.log"
    env = {**os.environ, "LD_LIBRARY_PATH": libraries}
    with log.open("w") as handle:
        done = subprocess.run([str(binary), "profile", "-f", str(config_path)], stdout=handle, stderr=subprocess.STDOUT,
                              env=env, cwd=work)
    if done.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-6:]
        raise ServerError(Problem("Model Analyzer failed:\n      " + "\n      ".join(tail), model=model,
                                  hint=f"its log: {log}"))
    return _best(model, work)


def _best(model: str, work: Path) -> ProfileResult:
    table = work / "reports" / "results" / "metrics-model-inference.csv"
    rows = [r for r in csv.DictReader(table.read_text().splitlines()) if r.get("Model") == model]
    usable = [r for r in rows if r.get("Satisfies Constraints", "Yes") == "Yes"] or rows
    if not usable:
        raise ServerError(Problem(f"Model Analyzer measured nothing ({table})", model=model))
    from compiler.triton_config import parse_text

    settings: dict[str, tuple[int, int, int | None]] = {}
    for name in {r["Model Config Path"] for r in rows}:
        chosen = parse_text(layout.config_file(work / "configs" / name).read_text())
        group = chosen.instance_group[0] if chosen.instance_group else None
        settings[name] = (group.count if group else 1, chosen.max_batch_size,
                          chosen.dynamic_batching.max_queue_delay_microseconds
                          if chosen.HasField("dynamic_batching") else None)
    measured = tuple(Measured(r["Model Config Path"], int(r["Concurrency"]), float(r["Throughput (infer/sec)"]),
                              float(r["p99 Latency (ms)"]), *settings[r["Model Config Path"]]) for r in rows)
    top = max((m for m, r in zip(measured, rows) if r in usable), key=lambda m: m.throughput)
    variant: dict[str, Any] = {"instance_group": [{"kind": "KIND_CPU", "count": top.instance_count}],
                               "max_batch_size": top.max_batch_size}
    if top.max_queue_delay_microseconds is not None:
        variant["dynamic_batching"] = {"max_queue_delay_microseconds": top.max_queue_delay_microseconds}
    snippet = work / "variants.yaml"
    snippet.write_text(f"# Model Analyzer's best of {len(rows)} measurements for {model}: {top.config}, "
                       f"{top.throughput:.1f} infer/s at concurrency {top.concurrency}, p99 "
                       f"{top.p99_ms:.1f} ms.\n# Paste under the model's entry in models.yaml; "
                       "`make serve VARIANT=profiled` loads it.\n" + yaml_text({"variants": {"profiled": variant}}))
    return ProfileResult(top, snippet, work / "reports", measured)
