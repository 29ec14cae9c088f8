"""Command line: options in, one library call, exit code out.

Exit codes: 0 ok, 1 user error (one clean message per problem, no
traceback), 2 usage error (click), 3 internal error (a bug: traceback shown).
"""

from __future__ import annotations

import sys
import time
import traceback
from pathlib import Path
from typing import Any

import click

from compiler.check.release import LOOKUP_ORDER
from compiler.errors import Problem, UserError
from compiler.sources.paths import ALLOW_ENV

EXIT_USER = 1
EXIT_INTERNAL = 3

manifest_option = click.option(
    "--manifest", type=click.Path(path_type=Path, dir_okay=False), default=Path("models.yaml"),
    show_default=True, help="The models.yaml manifest.")
#: For commands that read a built repository: the manifest defaults to the one its build record names.
built_manifest_option = click.option(
    "--manifest", type=click.Path(path_type=Path, dir_okay=False), default=None,
    help="The models.yaml manifest (default: the one that built the repository, from its build.json; "
         "else models.yaml).")


def _manifest_of(repository: Path, given: Path | None) -> Path:
    if given is not None:
        return given
    from compiler.repository.record import built_from

    return built_from(repository)[0] or Path("models.yaml")
repository_option = click.option(
    "--repository", "--output", "repository", type=click.Path(path_type=Path, file_okay=False),
    default=Path("Triton/models"), show_default=True, help="The Triton model repository folder.")
variant_option = click.option(
    "--variant", metavar="NAME", help="Serve configs/NAME.pbtxt (tritonserver --model-config-name); models "
    "without that variant use config.pbtxt.")
allow_path_option = click.option(
    "--allow-path", "allow_paths", multiple=True, envvar=ALLOW_ENV,
    type=click.Path(path_type=Path, file_okay=False),
    help=f"A folder outside the manifest's that manifest paths (weights, torchscript) may point into "
         f"(repeatable; default: ${ALLOW_ENV}, separated by ':').")


def _progress(text: str) -> None:
    click.echo(f"  {text}", err=True)


def _style(text: str, kind: str) -> str:
    return click.style(text, fg="yellow") if kind == "warning" else click.style(text, fg="red", bold=True)


class CompilerGroup(click.Group):
    """Every command's errors are handled here, once: UserError is exit 1 with a clean message; anything
    else is a bug (exit 3, traceback)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UserError as err:
            click.echo(click.style("error: ", fg="red", bold=True) + err.render(), err=True)
            for cause in err.underlying() if ctx.meta.get("traceback") else []:
                click.echo("traceback of the error underneath (--traceback):", err=True)
                click.echo("".join(traceback.format_exception(cause)).rstrip(), err=True)
            sys.exit(EXIT_USER)
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort, KeyboardInterrupt):
            raise
        except Exception:
            click.echo("internal error (a bug in the compiler; please report it):", err=True)
            traceback.print_exc()
            sys.exit(EXIT_INTERNAL)


@click.group(cls=CompilerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name=None, version=__import__("compiler").__version__)
@click.option("--traceback", "show_traceback", is_flag=True,
              help="On a user error, also print the traceback underneath it (a model factory's own, for one).")
@click.pass_context
def main(ctx: click.Context, show_traceback: bool) -> None:
    """Compile models.yaml into a Triton model repository, serve it and verify it."""
    ctx.meta["traceback"] = show_traceback


@main.command()
@manifest_option
@repository_option
@click.option("--force", is_flag=True, help="Export every model even if its fingerprint is unchanged.")
@click.option("--cross-proof/--no-cross-proof", default=True, show_default=True, envvar="TRITON_COMPILER_CROSS_PROOF",
              help="Prove the model files again in the torch the target's image ships (a cached venv of it, made "
                   "from the package index on first use); without it the build says they are not proved there. "
                   "TRITON_COMPILER_CROSS_PROOF=0 says the same.")
@allow_path_option
def build(manifest: Path, repository: Path, force: bool, cross_proof: bool, allow_paths: tuple[Path, ...]) -> None:
    """Export every model and write the repository (all or nothing)."""
    from compiler.build import BuildOptions
    from compiler.build import build as run_build
    from compiler.reporting import build_lines

    started = time.monotonic()
    report = run_build(manifest, repository, progress=_progress,
                       options=BuildOptions(force, tuple(allow_paths), cross_proof))
    for line in build_lines(report, time.monotonic() - started, _style):
        click.echo(line)


@main.command("container-files")
@manifest_option
def container_files(manifest: Path) -> None:
    """Write Dockerfile and docker-compose.yml beside the manifest, from it."""
    from compiler.deploy.container import write_container_files
    from compiler.manifest import load_manifest

    loaded = load_manifest(manifest)
    for path in write_container_files(loaded, loaded.directory):
        click.echo(f"wrote {path}")


def _release_of(repository: Path, manifest: Path | None) -> str:
    """The release to serve: the given manifest's, else as `check` finds it (check/release.py LOOKUP_ORDER)."""
    from compiler.check.release import resolve_release
    from compiler.manifest import load_manifest

    return load_manifest(manifest).manifest.triton_version if manifest else resolve_release(repository, None)[0]


@main.command()
@repository_option
@built_manifest_option
@click.option("--http-port", type=int, default=8000, show_default=True)
@click.option("--grpc-port", type=int, default=8001, show_default=True)
@click.option("--metrics-port", type=int, default=8002, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the embedded server binds to.")
@click.option("--engine", type=click.Choice(["auto", "embedded", "docker"]), default="auto", show_default=True,
              help="docker: the NGC image of the manifest's release; embedded: the nvidia-pytriton tritonserver.")
@variant_option
def serve(repository: Path, manifest: Path | None, http_port: int, grpc_port: int, metrics_port: int, host: str,
          engine: str, variant: str | None) -> None:
    """Serve the repository in tritonserver, in the foreground (Ctrl-C stops it)."""
    from compiler.server.docker import choose_engine
    from compiler.server.ports import Ports
    from compiler.server.serve import serve_docker, serve_embedded

    chosen, why = choose_engine(engine)
    click.echo(f"engine: {chosen} ({why})", err=True)
    ports = Ports(http_port, grpc_port, metrics_port)
    if chosen == "docker":
        code = serve_docker(repository, ports, host, _release_of(repository, manifest), click.echo, variant)
        if code != 0:  # docker's own status (125: docker failed, 126/127: the command, else tritonserver's)
            click.echo(f"error: the tritonserver container exited with status {code} (docker's, or the server's); "
                       "its output is above", err=True)
            sys.exit(EXIT_USER)  # the documented codes: 0 ok, 1 a failure the user can act on
        return
    serve_embedded(repository, ports, host, click.echo, variant=variant)


@main.command(name="import")
@click.argument("repository", type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.option("--output", "-o", type=click.Path(path_type=Path, dir_okay=False), default=Path("models.yaml"),
              show_default=True, help="The manifest to write (its paths are relative to its folder).")
@click.option("--force", is_flag=True, help="Overwrite the manifest if it exists.")
@allow_path_option
def import_(repository: Path, output: Path, force: bool, allow_paths: tuple[Path, ...]) -> None:
    """Write a models.yaml that builds an existing model repository again: what no key expresses goes under
    `config:`, and what cannot be imported is named, with why."""
    from compiler.importer.repository import import_repository, manifest_text
    from compiler.validate import validate_manifest

    if output.exists() and not force:
        raise UserError(Problem(f"{output} exists", hint="give another --output, or --force to overwrite it"))
    result = import_repository(repository, output.parent if str(output.parent) else Path("."))
    for line in result.said:
        click.echo(line)
    if not result.entries:
        raise UserError(Problem(f"{repository}: no model could be imported", hint="see the lines above"))
    output.write_text(manifest_text(result, repository))
    base = output.resolve().parent
    outside = not repository.resolve().is_relative_to(base)
    loaded = validate_manifest(output, (*allow_paths, repository) if outside else allow_paths)
    how = f"`build --manifest {output}" + (f" --allow-path {repository}`" if outside else "`")
    click.echo(f"{output}: {len(loaded.manifest.models)} models and {len(loaded.manifest.pipelines or [])} pipelines "
               f"imported (Triton {loaded.manifest.triton_version}); {how} builds them again")


@main.command()
@built_manifest_option
@repository_option
@variant_option
@allow_path_option
def verify(manifest: Path | None, repository: Path, variant: str | None, allow_paths: tuple[Path, ...]) -> None:
    """Serve the repository on free loopback ports and check it against eager PyTorch."""
    from compiler.reporting import verify_lines
    from compiler.verify import verify as run_verify

    checks = run_verify(_manifest_of(repository, manifest), repository, progress=_progress, variant=variant, allow_paths=allow_paths)
    for line in verify_lines(checks, _style):
        click.echo(line)
    if not all(c.ok for c in checks):
        sys.exit(EXIT_USER)


@main.command()
@click.option("--output", type=click.Path(path_type=Path, dir_okay=False), default=Path("proto/models.schema.json"),
              show_default=True)
@click.option("--reference", type=click.Path(path_type=Path, dir_okay=False), default=Path("docs/manifest.md"),
              show_default=True, help="where the manifest reference (Markdown) goes")
@click.option("--rules", "rules_doc", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              default=Path("docs/check.md"), show_default=True,
              help="the document whose rule list is written from the rule book")
def schema(output: Path, reference: Path, rules_doc: Path) -> None:
    """Write the JSON Schema of models.yaml (for editor completion), its reference (docs/manifest.md), and the rule
    list of docs/check.md from the rule book."""
    from compiler.manifest.jsonschema import manifest_schema
    from compiler.manifest.reference import manifest_reference
    from compiler.rulebook import with_rule_list

    for path, text in ((output, manifest_schema()), (reference, manifest_reference()),
                       (rules_doc, with_rule_list(rules_doc.read_text()))):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        click.echo(f"wrote {path}")


def _selectors(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    """--select/--ignore values, repeated or comma-separated (C1,L001), each a code or a prefix of codes."""
    from compiler.rulebook import unknown

    chosen = tuple(part.strip().upper() for value in values for part in value.split(",") if part.strip())
    wrong = unknown(chosen)
    if wrong:
        raise click.BadParameter(f"{', '.join(wrong)} names no rule (`python -m compiler rules` lists them)",
                                 param_hint=f"--{param.name}")
    return chosen


@main.command()
@click.argument("repository", type=click.Path(path_type=Path, file_okay=False, exists=True), default="Triton/models")
@click.option("--triton-version", help=f"Target release (YY.MM). The release is {LOOKUP_ORDER}.")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--no-run", is_flag=True, help="Skip loading and running the model files (fast, no torch).")
@click.option("--select", multiple=True, callback=_selectors, metavar="CODE",
              help="Report only these rules: codes or prefixes (C110, C1, L), repeated or comma-separated.")
@click.option("--ignore", multiple=True, callback=_selectors, metavar="CODE",
              help="Report none of these rules; the longer of a --select and an --ignore that both match wins.")
def check(repository: Path, triton_version: str | None, output_format: str, no_run: bool, select: tuple[str, ...],
          ignore: tuple[str, ...]) -> None:
    """Lint a Triton model repository (ours or hand-written) against its models and release. Every finding names
    its rule's code (`python -m compiler rules` lists them)."""
    from compiler.check import check_repository
    from compiler.check.findings import ERROR, render_json, render_text
    from compiler.rulebook import chosen

    if triton_version:
        from compiler.releases import known_release

        try:
            known_release(triton_version)
        except ValueError as err:
            raise click.BadParameter(str(err), param_hint="--triton-version") from None
    findings, release, why = check_repository(repository, triton_version, run_models=not no_run)
    findings = [f for f in findings if chosen(f.code, select, ignore)]
    shown = [f for f in findings if output_format == "json" or f.severity != "info" or not no_run]
    click.echo(render_json(shown, release, why) if output_format == "json" else render_text(shown, release, why))
    if any(f.severity == ERROR for f in findings):
        sys.exit(EXIT_USER)


@main.command()
@click.option("--format", "output_format", type=click.Choice(["text", "markdown", "json"]), default="text",
              show_default=True)
def rules(output_format: str) -> None:
    """List the rule book: every rule validate, build and check apply, with its code, releases, source and fix."""
    import json
    from dataclasses import asdict

    from compiler.rulebook import RULES, markdown

    if output_format == "markdown":
        click.echo(markdown(), nl=False)
    elif output_format == "json":
        click.echo(json.dumps([{**asdict(r), "releases": r.releases()} for r in RULES.values()], indent=2))
    else:
        for r in RULES.values():
            click.echo(f"{r.code} {r.name:<34} {r.severity:<7} {r.releases():<22} {r.what}")


@main.command()
@click.argument("manifests", nargs=-1, type=click.Path(path_type=Path, dir_okay=False))
@allow_path_option
def validate(manifests: tuple[Path, ...], allow_paths: tuple[Path, ...]) -> None:
    """Validate manifests without exporting anything: every rule that needs no model (fast; the pre-commit hook)."""
    from compiler.validate import validate_manifest

    problems = []
    for path in manifests or (Path("models.yaml"),):
        try:
            loaded = validate_manifest(path, allow_paths)
            click.echo(f"{path}: ok ({len(loaded.manifest.models)} models, Triton {loaded.manifest.triton_version})")
        except UserError as err:
            problems.extend(err.problems)
    if problems:
        raise UserError(problems)


@main.command()
@built_manifest_option
@repository_option
@click.option("--model", "model_name", default="bert", show_default=True, help="The manifest model to soak.")
@click.option("--requests", type=click.IntRange(1), default=20000, show_default=True)
@click.option("--concurrency", type=click.IntRange(1, 256), default=16, show_default=True)
@click.option("--hostile-share", type=click.FloatRange(0, 1), default=0.05, show_default=True,
              help="The part of the requests that are hostile (out-of-range values, NaN, bad sizes and dtypes).")
@click.option("--overload", type=click.FloatRange(1.0, 100.0), default=None, metavar="FACTOR",
              help="Instead: offer FACTOR times the model's measured capacity, open loop, and show the bound its "
              "queue policy keeps (admitted within the budget, the excess refused, health checks answered).")
@click.option("--seconds", type=click.FloatRange(1.0), default=10.0, show_default=True, help="How long --overload lasts.")
@click.option("--burst", type=click.IntRange(1, 20000), default=None, metavar="N",
              help="Instead of --overload's rate: send N requests at once, each from its own thread (they reach the "
              "server as fast as this client starts them: a few hundred to a few thousand a second).")
@allow_path_option
def soak(manifest: Path | None, repository: Path, model_name: str, requests: int, concurrency: int,
         hostile_share: float, overload: float | None, seconds: float, burst: int | None,
         allow_paths: tuple[Path, ...]) -> None:
    """Many concurrent HTTP and gRPC requests, every answer checked; memory before and after. Or --overload, or
    --burst. An overload that this client could not offer (it sent no faster than the model serves) fails, and says
    so."""
    from compiler.verify.soak import soak as run_soak

    if overload is not None or burst is not None:
        from compiler.verify.overload import overload as run_overload

        shed = run_overload(_manifest_of(repository, manifest), repository, model_name, overload or 3.0, seconds,
                            allow_paths, burst=burst)
        click.echo(shed.summary())
        for error in shed.errors[:10] + shed.exits[:10]:
            click.echo(f"  error: {error}")
        if shed.errors or shed.wrong or shed.exits or not shed.overloaded:
            sys.exit(EXIT_USER)
        return

    step = max(1, requests // 20)

    def progress(done: int) -> None:
        if done % step == 0:
            click.echo(f"  {done}/{requests}", err=True)

    report = run_soak(_manifest_of(repository, manifest), repository, model_name, requests, concurrency, progress,
                      allow_paths=allow_paths, hostile_share=hostile_share)
    click.echo(report.summary())
    for error in report.errors[:10] + report.hostile_wrong[:10] + report.deaths[:10]:
        click.echo(f"  error: {error}")
    if not report.ok:
        sys.exit(EXIT_USER)


@main.command()
@click.argument("model")
@click.option("--input", "inputs", multiple=True, metavar="NAME=FILE.npy", help="An input from a .npy file.")
@click.option("--text", help="Text: sent as it is to a pipeline; tokenized with the model's tokenizer (from the manifest) for a model.")
@click.option("--image", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="An image: its bytes to a pipeline; resized and normalised for a model.")
@click.option("--url", help="Server address (default 127.0.0.1:8000 for http, :8001 for grpc).")
@click.option("--protocol", type=click.Choice(["http", "grpc"]), default="http", show_default=True)
@click.option("--output-dir", type=click.Path(path_type=Path, file_okay=False), help="Save each output as NAME.npy here.")
@click.option("--classes", type=click.IntRange(1), help="Ask for the top K classes of each output with labels "
              "(Triton's classification extension: score:index:label).")
@built_manifest_option
@repository_option
def infer(model: str, inputs: tuple[str, ...], text: str | None, image: Path | None, url: str | None, protocol: str,
          output_dir: Path | None, classes: int | None, manifest: Path | None, repository: Path) -> None:
    """Send one request to a served MODEL; names, dtypes and shapes come from its served config."""
    from compiler.client import infer as client

    files = {}
    for item in inputs:
        name, sep, path = item.partition("=")
        if not sep:
            raise click.BadParameter(f"'{item}' is not NAME=FILE.npy", param_hint="--input")
        files[name] = Path(path)
    spec = None
    manifest = _manifest_of(repository, manifest)
    if manifest.is_file():
        from compiler.manifest import load_manifest

        spec = next((m for m in load_manifest(manifest).manifest.models if m.name == model), None)
    result = client.infer(client.InferRequest(model=model, url=url, protocol=protocol, files=files, text=text,
                                              image=image, manifest_model=spec, manifest_dir=manifest.parent,
                                              output_dir=output_dir, classes=classes))
    if result.used_manifest:
        click.echo(f"manifest: {manifest} (its model '{model}' shaped the request)", err=True)
    elif result.used_manifest is False:
        click.echo(f"note: the served '{model}' is not the one in {manifest} (inputs or batching differ): the request "
                   "is shaped by the served config alone", err=True)
    if result.random_inputs:
        click.echo("inputs: random, shaped by the served config", err=True)
    for name, value in result.inputs.items():
        click.echo(f"input  {name}: {value.dtype} {list(value.shape)}", err=True)
    for name, value in result.outputs.items():
        click.echo(client.summarize(name, value))
    for saved in result.saved:
        click.echo(f"  saved {saved}")


@main.command()
@click.argument("models", nargs=-1)
@manifest_option
@repository_option
@click.option("--seconds", type=float, default=6.0, show_default=True,
              help="Shortest window of each measurement (slow models get longer ones).")
@click.option("--rounds", type=click.IntRange(1), default=2, show_default=True,
              help="Interleaved rounds; every row is measured once per round.")
@click.option("--no-pytriton", is_flag=True, help="Skip the PyTriton comparison.")
@click.option("--no-torchscript", is_flag=True, help="Skip serving the AOTI models' TorchScript twins beside them.")
@click.option("--no-build", is_flag=True, help="Skip the build-time comparison.")
@click.option("--no-profile", is_flag=True, help="Skip Model Analyzer's quick sweep of each model.")
@click.option("--no-warmup", is_flag=True, help="Skip the first-request rows (each model loaded again without and "
              "with model_warmup).")
@click.option("--no-tuning", is_flag=True, help="Skip the tuning rows (each model served again with other queue "
              "delays, a preferred batch size, one intra-op thread; measured side by side).")
@click.option("--no-anchors", is_flag=True, help="Skip the text pipelines' anchor rows (sentence-transformers "
              "encode() of the same texts, in a cached venv of its own).")
@click.option("--docs", type=click.Path(path_type=Path, file_okay=False), default=Path("docs"), show_default=True)
def bench(models: tuple[str, ...], manifest: Path, repository: Path, seconds: float, rounds: int, no_pytriton: bool,
          no_torchscript: bool, no_build: bool, no_profile: bool, no_warmup: bool, no_tuning: bool,
          no_anchors: bool, docs: Path) -> None:
    """Served (perf_analyzer: HTTP and gRPC, concurrency 1 to 16) vs the same file in-process, eager PyTorch,
    TorchScript and PyTriton; pipelines against their steps in-process; Triton's statistics; the first request
    with and without warmup. MODELS: models and pipelines of the manifest (default: all)."""
    from tqdm import tqdm

    from compiler.bench import run_bench, write_report

    with tqdm(desc="bench", unit="cell", file=sys.stderr) as bar:
        results = run_bench(manifest, repository, list(models) or None, seconds, with_pytriton=not no_pytriton,
                            with_build=not no_build, rounds=rounds, tick=lambda: bar.update(1),
                            with_torchscript=not no_torchscript, with_profile=not no_profile,
                            with_warmup=not no_warmup, with_tuning=not no_tuning, with_anchors=not no_anchors)
    markdown, plot = write_report(results, docs)
    click.echo(markdown.read_text())
    click.echo(f"wrote {markdown} and {plot}")


@main.command()
@click.argument("model")
@repository_option
@click.option("--quick", is_flag=True, help="A short sweep: concurrency 1-2, the model's max batch size, delays "
              "0 and 100 us, 1 or 2 instances.")
@click.option("--strict-stability", is_flag=True,
              help="Keep perf_analyzer's stability rule (3 windows within 10%); by default each measurement averages "
                   "its windows whatever their spread, as `make bench` does on shared machines.")
def profile(model: str, repository: Path, quick: bool, strict_stability: bool) -> None:
    """Model Analyzer's sweep of MODEL (instance counts, max batch sizes, queue delays) against the embedded
    tritonserver; writes the best configuration as a `variants:` snippet beside its reports."""
    from compiler.profiling.model_analyzer import profile as run_profile

    result = run_profile(repository, model, quick=quick, strict_stability=strict_stability, progress=_progress)
    best = result.best
    click.echo(f"{model}: best of {result.rows} measurements: {best.config}, {best.throughput:.1f} infer/s at "
               f"concurrency {best.concurrency} (p99 {best.p99_ms:.1f} ms): {best.instance_count} instance(s), "
               f"max_batch_size {best.max_batch_size}, queue delay {best.max_queue_delay_microseconds} us")
    click.echo(f"wrote {result.snippet} (paste under the model in models.yaml) and the reports in {result.reports}")


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
def deploy(manifest: Path, repository: Path, target: str, storage_uri: str | None, replicas: int,
           max_replicas: int | None, name: str, namespace: str | None, variant: str | None, out_dir: Path) -> None:
    """Write Kubernetes manifests serving the repository: a KServe InferenceService, or plain Kubernetes."""
    from compiler.deploy import DeployOptions, StorageUri, write_deploy
    from compiler.manifest import load_manifest

    options = DeployOptions(StorageUri.parse(storage_uri) if storage_uri else None, replicas, max_replicas, name,
                            namespace, variant)
    deployed = write_deploy(load_manifest(manifest), target, options, out_dir, repository)
    for path in deployed.files:
        click.echo(f"wrote {path}")
    click.echo(deployed.validation)


@main.command()
@repository_option
@click.option("--storage-uri", required=True, help="s3://bucket/path, or s3://host:port/bucket/path (S3-compatible).")
@click.option("--endpoint-url", help="S3 endpoint URL (default: AWS, or http://host:port from the URI).")
@click.option("--delete/--no-delete", default=True, show_default=True,
              help="Delete objects under the prefix that the repository no longer has.")
def publish(repository: Path, storage_uri: str, endpoint_url: str | None, delete: bool) -> None:
    """Upload the repository to S3-compatible storage; unchanged files (by sha256) are not sent again."""
    from compiler.deploy.publish import publish as run_publish
    from compiler.deploy.storage_uri import StorageUri

    report = run_publish(repository, StorageUri.parse(storage_uri), endpoint_url, delete, progress=_progress)
    click.echo(f"{storage_uri}: {len(report.uploaded)} uploaded ({report.bytes_uploaded / 2**20:.1f} MiB), "
               f"{len(report.unchanged)} unchanged, {len(report.deleted)} deleted")
