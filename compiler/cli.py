"""Command line: options in, one library call, exit code out.

Exit codes: 0 ok, 1 user error (one clean message per problem, no
traceback), 2 usage error (click), 3 internal error (a bug: traceback shown).
"""

from __future__ import annotations

import functools
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from compiler.errors import UserError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_USER = 1
EXIT_INTERNAL = 3

manifest_option = click.option(
    "--manifest", type=click.Path(path_type=Path, dir_okay=False), default=Path("models.yaml"),
    show_default=True, help="The models.yaml manifest.")
repository_option = click.option(
    "--repository", "--output", "repository", type=click.Path(path_type=Path, file_okay=False),
    default=Path("Triton/models"), show_default=True, help="The Triton model repository folder.")
variant_option = click.option(
    "--variant", metavar="NAME", help="Serve configs/NAME.pbtxt (tritonserver --model-config-name); models "
    "without that variant use config.pbtxt.")


def _progress(text: str) -> None:
    click.echo(f"  {text}", err=True)


def handle_errors(func: F) -> F:
    """Turn UserError into exit 1 with a clean message; anything else is a bug."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except UserError as err:
            click.echo(click.style("error: ", fg="red", bold=True) + err.render(), err=True)
            sys.exit(EXIT_USER)
        except (click.exceptions.Exit, click.ClickException, KeyboardInterrupt):
            raise
        except Exception:
            click.echo("internal error (a bug in the compiler; please report it):", err=True)
            traceback.print_exc()
            sys.exit(EXIT_INTERNAL)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name=None, version=__import__("compiler").__version__)
def main() -> None:
    """Compile models.yaml into a Triton model repository, serve it and verify it."""


@main.command()
@manifest_option
@repository_option
@click.option("--force", is_flag=True, help="Export every model even if its fingerprint is unchanged.")
@click.option("--allow-path", "allow_paths", multiple=True, type=click.Path(path_type=Path, file_okay=False),
              help="A folder outside the manifest's that manifest paths (weights, torchscript) may point into.")
@handle_errors
def build(manifest: Path, repository: Path, force: bool, allow_paths: tuple[Path, ...]) -> None:
    """Export every model and write the repository (all or nothing)."""
    import os

    from compiler.build import build as run_build
    from compiler.sources.paths import ALLOW_ENV

    if allow_paths:
        existing = [p for p in os.environ.get(ALLOW_ENV, "").split(os.pathsep) if p]
        os.environ[ALLOW_ENV] = os.pathsep.join(existing + [str(p.resolve()) for p in allow_paths])

    started = time.monotonic()
    report = run_build(manifest, repository, progress=_progress, force=force)
    for entry in report.models:
        click.echo(f"{entry.name:<20} {entry.status}" + (f" in {entry.seconds:.1f}s" if entry.seconds else ""))
        for name, argument in entry.binding:
            click.echo(f"    input  {name} -> forward({argument})")
        for line in entry.outputs:
            click.echo(f"    output {line}")
        for warning in entry.warnings:
            click.echo(click.style("    warning: ", fg="yellow") + warning)
    for warning in report.warnings:
        click.echo(click.style("warning: ", fg="yellow") + warning)
    state = "written" if report.wrote else "unchanged, nothing written"
    click.echo(f"repository {report.output}: {state} ({time.monotonic() - started:.1f}s)")


@main.command("container-files")
@manifest_option
@handle_errors
def container_files(manifest: Path) -> None:
    """Write Dockerfile and docker-compose.yml beside the manifest, from it."""
    from compiler.manifest import load_manifest
    from compiler.repository.container import write_container_files

    loaded = load_manifest(manifest)
    for path in write_container_files(loaded, loaded.directory):
        click.echo(f"wrote {path}")


def _release_of(manifest: Path) -> str:
    from compiler.manifest import load_manifest
    from compiler.releases import DEFAULT_RELEASE

    return load_manifest(manifest).manifest.triton_version if manifest.exists() else DEFAULT_RELEASE


@main.command()
@repository_option
@manifest_option
@click.option("--http-port", type=int, default=8000, show_default=True)
@click.option("--grpc-port", type=int, default=8001, show_default=True)
@click.option("--metrics-port", type=int, default=8002, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the embedded server binds to.")
@click.option("--engine", type=click.Choice(["auto", "embedded", "docker"]), default="auto", show_default=True,
              help="docker: the NGC image of the manifest's release; embedded: the nvidia-pytriton tritonserver.")
@variant_option
@handle_errors
def serve(repository: Path, manifest: Path, http_port: int, grpc_port: int, metrics_port: int, host: str,
          engine: str, variant: str | None) -> None:
    """Serve the repository in tritonserver, in the foreground (Ctrl-C stops it)."""
    from compiler.server.docker import choose_engine
    from compiler.server.ports import Ports
    from compiler.server.serve import serve_docker, serve_embedded

    chosen, why = choose_engine(engine)
    click.echo(f"engine: {chosen} ({why})", err=True)
    ports = Ports(http_port, grpc_port, metrics_port)
    if chosen == "docker":
        sys.exit(serve_docker(repository, ports, host, _release_of(manifest), click.echo, variant))
    serve_embedded(repository, ports, host, click.echo, variant=variant)


@main.command()
@manifest_option
@repository_option
@variant_option
@handle_errors
def verify(manifest: Path, repository: Path, variant: str | None) -> None:
    """Serve the repository on free loopback ports and check it against eager PyTorch."""
    from compiler.verify import verify as run_verify

    checks = run_verify(manifest, repository, progress=_progress, variant=variant)
    width = max(len(c.check) for c in checks)
    click.echo(f"{'model':<12} {'check':<{width}} {'proto':<5} result")
    for c in checks:
        mark = "ok  " if c.ok else click.style("FAIL", fg="red", bold=True)
        click.echo(f"{c.model:<12} {c.check:<{width}} {c.protocol:<5} {mark} {c.detail}")
    failed = [c for c in checks if not c.ok]
    click.echo(f"{len(checks) - len(failed)} passed, {len(failed)} failed")
    if failed:
        sys.exit(EXIT_USER)


@main.command()
@click.option("--output", type=click.Path(path_type=Path, dir_okay=False), default=Path("proto/models.schema.json"),
              show_default=True)
@handle_errors
def schema(output: Path) -> None:
    """Write the JSON Schema of models.yaml (for editor completion)."""
    from compiler.manifest.jsonschema import manifest_schema

    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(manifest_schema())
    click.echo(f"wrote {output}")


@main.command()
@click.argument("repository", type=click.Path(path_type=Path, file_okay=False, exists=True), default="Triton/models")
@click.option("--triton-version", help="Target release (YY.MM); default: Dockerfile FROM tag, manifest, latest.")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--no-run", is_flag=True, help="Skip loading and running the model files (fast, no torch).")
@handle_errors
def check(repository: Path, triton_version: str | None, output_format: str, no_run: bool) -> None:
    """Lint a Triton model repository (ours or hand-written) against its models and release."""
    from compiler.check import check_repository
    from compiler.check.findings import ERROR, render_json, render_text
    from compiler.releases import Release

    if triton_version:
        try:
            Release.parse(triton_version)
        except ValueError as err:
            raise click.BadParameter(str(err), param_hint="--triton-version") from None
    findings, release, why = check_repository(repository, triton_version, run_models=not no_run)
    shown = [f for f in findings if output_format == "json" or f.severity != "info" or not no_run]
    click.echo(render_json(shown, release, why) if output_format == "json" else render_text(shown, release, why))
    if any(f.severity == ERROR for f in findings):
        sys.exit(EXIT_USER)


@main.command()
@click.argument("manifests", nargs=-1, type=click.Path(path_type=Path, dir_okay=False))
@handle_errors
def validate(manifests: tuple[Path, ...]) -> None:
    """Validate manifests without exporting anything (fast; the pre-commit hook)."""
    from compiler.errors import UserError as _UserError
    from compiler.manifest import load_manifest

    problems = []
    for path in manifests or (Path("models.yaml"),):
        try:
            loaded = load_manifest(path)
            click.echo(f"{path}: ok ({len(loaded.manifest.models)} models, Triton {loaded.manifest.triton_version})")
        except _UserError as err:
            problems.extend(err.problems)
    if problems:
        raise UserError(problems)


@main.command()
@manifest_option
@repository_option
@click.option("--model", "model_name", default="bert", show_default=True, help="The manifest model to soak.")
@click.option("--requests", type=click.IntRange(1), default=20000, show_default=True)
@click.option("--concurrency", type=click.IntRange(1, 256), default=16, show_default=True)
@handle_errors
def soak(manifest: Path, repository: Path, model_name: str, requests: int, concurrency: int) -> None:
    """Many concurrent HTTP and gRPC requests, every answer checked; memory before and after."""
    from compiler.verify.soak import soak as run_soak

    step = max(1, requests // 20)

    def progress(done: int) -> None:
        if done % step == 0:
            click.echo(f"  {done}/{requests}", err=True)

    report = run_soak(manifest, repository, model_name, requests, concurrency, progress)
    click.echo(report.summary())
    for error in report.errors[:10]:
        click.echo(f"  error: {error}")
    if not report.ok:
        sys.exit(EXIT_USER)


@main.command()
@click.argument("model")
@click.option("--input", "inputs", multiple=True, metavar="NAME=FILE.npy", help="An input from a .npy file.")
@click.option("--text", help="Text, tokenized with the model's tokenizer (from the manifest).")
@click.option("--image", type=click.Path(path_type=Path, dir_okay=False, exists=True), help="An image, resized and normalised.")
@click.option("--url", help="Server address (default 127.0.0.1:8000 for http, :8001 for grpc).")
@click.option("--protocol", type=click.Choice(["http", "grpc"]), default="http", show_default=True)
@click.option("--output-dir", type=click.Path(path_type=Path, file_okay=False), help="Save each output as NAME.npy here.")
@manifest_option
@handle_errors
def infer(model: str, inputs: tuple[str, ...], text: str | None, image: Path | None, url: str | None, protocol: str,
          output_dir: Path | None, manifest: Path) -> None:
    """Send one request to a served MODEL; names, dtypes and shapes come from its served config."""
    import numpy as np

    from compiler.client import infer as client

    address = url or client.default_url(protocol)
    config = client.served_config(model, address, protocol)
    spec = None
    base = manifest.parent
    if manifest.is_file():
        from compiler.manifest import load_manifest

        spec = next((m for m in load_manifest(manifest).manifest.models if m.name == model), None)
    given = {}
    for item in inputs:
        name, sep, path = item.partition("=")
        if not sep:
            raise click.BadParameter(f"'{item}' is not NAME=FILE.npy", param_hint="--input")
        given[name] = Path(path)
    if text is not None:
        arrays = client.text_inputs(config, spec, text, base)
    elif image is not None:
        arrays = client.image_inputs(config, image)
    elif given:
        arrays = client.file_inputs(config, given)
    else:
        arrays = client.random_inputs(config, spec)
        click.echo("inputs: random, shaped by the served config", err=True)
    for name, value in arrays.items():
        click.echo(f"input  {name}: {value.dtype} {list(value.shape)}", err=True)
    outputs = client.run(config, arrays, address, protocol)
    for name, value in outputs.items():
        click.echo(client.summarize(name, value))
        if output_dir is not None:
            output_dir.mkdir(parents=True, exist_ok=True)
            np_path = output_dir / f"{name}.npy"
            np.save(np_path, value)
            click.echo(f"  saved {np_path}")


@main.command()
@click.argument("models", nargs=-1)
@manifest_option
@repository_option
@click.option("--seconds", type=float, default=6.0, show_default=True,
              help="Shortest window of each measurement (slow models get longer ones).")
@click.option("--rounds", type=click.IntRange(1), default=3, show_default=True,
              help="Interleaved rounds; every measurement adds up its windows from all of them.")
@click.option("--no-pytriton", is_flag=True, help="Skip the PyTriton comparison.")
@click.option("--no-build", is_flag=True, help="Skip the build-time comparison.")
@click.option("--docs", type=click.Path(path_type=Path, file_okay=False), default=Path("docs"), show_default=True)
@handle_errors
def bench(models: tuple[str, ...], manifest: Path, repository: Path, seconds: float, rounds: int, no_pytriton: bool,
          no_build: bool, docs: Path) -> None:
    """Throughput and latency: served (HTTP, gRPC; concurrency 1, 4, 16) vs eager PyTorch and PyTriton."""
    from tqdm import tqdm

    from compiler.bench import run_bench, write_report

    with tqdm(desc="bench", unit="req", file=sys.stderr) as bar:
        results = run_bench(manifest, repository, list(models) or None, seconds, with_pytriton=not no_pytriton,
                            with_build=not no_build, rounds=rounds, tick=lambda: bar.update(1))
    markdown, plot = write_report(results, docs)
    click.echo(markdown.read_text())
    click.echo(f"wrote {markdown} and {plot}")


@main.command()
@manifest_option
@repository_option
@click.option("--target", type=click.Choice(["kserve", "k8s"]), required=True,
              help="kserve: an InferenceService (Triton runtime, protocol v2); k8s: Deployment, Service, HPA.")
@click.option("--storage-uri", help="Where `publish` put the repository: s3://bucket/path (or s3://host:port/bucket/path).")
@click.option("--replicas", type=click.IntRange(1), default=1, show_default=True, help="Minimum replicas.")
@click.option("--max-replicas", type=click.IntRange(1), help="Autoscaling ceiling (default: 4 x --replicas).")
@click.option("--name", default="triton", show_default=True, help="Name of the Kubernetes objects.")
@click.option("--namespace", help="Namespace of the objects (default: the one kubectl applies to).")
@variant_option
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), default=Path("deploy"),
              show_default=True, help="Manifests go to OUT/<target>/.")
@handle_errors
def deploy(manifest: Path, repository: Path, target: str, storage_uri: str | None, replicas: int,
           max_replicas: int | None, name: str, namespace: str | None, variant: str | None, out_dir: Path) -> None:
    """Write Kubernetes manifests serving the repository: a KServe InferenceService, or plain Kubernetes."""
    from compiler.deploy import DeployOptions, StorageUri, write_deploy
    from compiler.manifest import load_manifest

    options = DeployOptions(StorageUri.parse(storage_uri) if storage_uri else None, replicas, max_replicas, name,
                            namespace, variant)
    loaded = load_manifest(manifest)
    files = write_deploy(loaded, target, options, out_dir, repository)
    try:
        from ruamel.yaml import YAML

        from compiler.deploy.validation import validate

        for path in files:
            validate(YAML(typ="safe").load(path.read_text()))
        checked = "validated offline (kubernetes-validate schemas, kserve models)"
    except ImportError:
        checked = "not validated: install requirements-dev.txt for kubernetes-validate and kserve"
    for path in files:
        click.echo(f"wrote {path}")
    click.echo(checked)


@main.command()
@repository_option
@click.option("--storage-uri", required=True, help="s3://bucket/path, or s3://host:port/bucket/path (S3-compatible).")
@click.option("--endpoint-url", help="S3 endpoint URL (default: AWS, or http://host:port from the URI).")
@click.option("--delete/--no-delete", default=True, show_default=True,
              help="Delete objects under the prefix that the repository no longer has.")
@handle_errors
def publish(repository: Path, storage_uri: str, endpoint_url: str | None, delete: bool) -> None:
    """Upload the repository to S3-compatible storage; unchanged files (by sha256) are not sent again."""
    from compiler.repository.publish import publish as run_publish
    from compiler.repository.storage_uri import StorageUri

    report = run_publish(repository, StorageUri.parse(storage_uri), endpoint_url, delete, progress=_progress)
    click.echo(f"{storage_uri}: {len(report.uploaded)} uploaded ({report.bytes_uploaded / 2**20:.1f} MiB), "
               f"{len(report.unchanged)} unchanged, {len(report.deleted)} deleted")
