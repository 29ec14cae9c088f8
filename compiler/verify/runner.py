"""verify: every model READY, its served config the emitted one, and its answers
over HTTP and gRPC equal to eager PyTorch at two sizes of each variable dim and
of the batch, also under concurrent requests that the dynamic batcher merges.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from tritonclient.grpc import model_config_pb2 as pb

from compiler import datatypes
from compiler.bench.stats import settled
from compiler.client.requests import infer_inputs
from compiler.datatypes import Arrays, Sendable
from compiler.errors import Problem, UserError
from compiler.export.examples import Plan, make_inputs, plans_for
from compiler.export.proof import mismatch
from compiler.export.reference import EagerReference
from compiler.manifest import LoadedManifest, ModelSpec, load_manifest
from compiler.repository import layout
from compiler.repository.record import read_record
from compiler.server.process import TritonProcess
from compiler.server.served import RepositoryModel
from compiler.server.session import embedded_server
from compiler.triton_config import parse_text
from compiler.verify.overload import was_shed
from compiler.verify.pipelines import pipeline_checks
from compiler.verify.result import Check

Progress = Callable[[str], None]
CONCURRENT_REQUESTS = 8


def verify(manifest_path: Path, repository: Path, progress: Progress = lambda _: None,
           variant: str | None = None, allow_paths: Sequence[Path] = ()) -> list[Check]:
    """`variant`: serve configs/<variant>.pbtxt (tritonserver --model-config-name) and check against it.
    `allow_paths`: folders outside the manifest's that its paths may point into (as for build)."""
    loaded = load_manifest(manifest_path)
    missing = [m.name for m in loaded.manifest.models if not layout.config_file(Path(repository) / m.name).is_file()]
    if missing:
        raise UserError(Problem(f"the repository {repository} lacks {', '.join(missing)}", hint="run `make repo` first"))
    checks: list[Check] = _freshness_checks(loaded, Path(repository), allow_paths)
    progress("starting tritonserver")
    with embedded_server(Path(repository), variant=variant) as (server, served_models):
        assert server.layout is not None
        checks.append(Check("tritonserver", "PyTorch backend", "-", True, server.layout.pytorch.label))
        states = {s.name: s.described for s in server.model_states()}  # with Triton's reason when not READY
        notes = {m.name: m.note for m in served_models if m.note}
        served = {m.name: m for m in served_models}
        for declared in loaded.manifest.models:
            model = declared.served_as(variant)
            state = states.get(model.name, "absent")
            checks.append(Check(model.name, "ready", "-", state == "READY", state + (f"; {notes[model.name]}"
                                                                                       if model.name in notes else "")))
            checks.append(_config_check(server, model, Path(repository), served[model.name]))
            checks.extend(_inference_checks(server, loaded, model, served[model.name].config_file, progress,
                                            allow_paths))
        checks.extend(pipeline_checks(server, loaded, Path(repository), progress, allow_paths))
        if server.supervisor is not None:  # a restart is a failure, wherever it happened
            exits = server.supervisor.exits
            checks.append(Check("tritonserver", "no exit while verifying", "-", not exits,
                                "; ".join(e.line() for e in exits) or "it ran from the first check to the last"))
    return checks


def _freshness_checks(loaded: LoadedManifest, repository: Path, allow_paths: Sequence[Path]) -> list[Check]:
    """A repository built from another manifest or compiler cannot be judged against today's eager model."""
    from compiler.repository.fingerprint import compiler_code_hash, fingerprint

    code = compiler_code_hash()
    checks = []
    for model in loaded.manifest.models:
        current = fingerprint(model, loaded.manifest.triton_version, loaded.directory, code, allow_paths,
                              loaded.manifest.target_torch)
        recorded = (read_record(repository / model.name) or {}).get("fingerprint")
        ok = recorded == current
        checks.append(Check(model.name, "built from this manifest", "-", ok,
                            "fingerprint matches" if ok else "stale: the manifest, sources or compiler changed since "
                            "the build; run `make repo`"))
    return checks


# -- served config -----------------------------------------------------------------------------
_COMPARED = ("name", "platform", "max_batch_size", "input", "output", "parameters")


def _config_check(server: TritonProcess, model: ModelSpec, repository: Path, loaded_as: RepositoryModel) -> Check:
    """The served config against the emitted one, as this machine loads it (served.py: the overrides a machine
    without a GPU, or a server older than the platform, needs; each one named in the row)."""
    config_file = loaded_as.config_file
    emitted = parse_text((repository / model.name / config_file).read_text())
    loaded_config = emitted
    if loaded_as.override is not None:
        loaded_config = json_format.ParseDict(loaded_as.override, pb.ModelConfig(), ignore_unknown_fields=True)
    served = pb.ModelConfig()
    json_format.ParseDict(server.served_config(model.name), served, ignore_unknown_fields=True)
    differences = []
    for field in _COMPARED:
        want, got = getattr(loaded_config, field), getattr(served, field)
        if field in ("input", "output"):
            want = [(t.name, t.data_type, list(t.dims), list(t.reshape.shape)) for t in want]
            got = [(t.name, t.data_type, list(t.dims), list(t.reshape.shape)) for t in got]
        elif field == "parameters":
            want = {k: v.string_value for k, v in want.items()}
            got = {k: v.string_value for k, v in got.items()}
        if want != got:
            differences.append(f"{field}: emitted {want}, served {got}")
    if emitted.HasField("dynamic_batching") != served.HasField("dynamic_batching"):
        differences.append("dynamic_batching present in one config only")
    want_groups = [(g.kind, g.count) for g in loaded_config.instance_group]
    got_groups = [(g.kind, g.count) for g in served.instance_group]
    if want_groups and want_groups != got_groups:
        differences.append(f"instance_group: emitted {want_groups}, served {got_groups}")
    matched = f"matches {config_file}" + (f" ({loaded_as.note})" if loaded_as.note else "")
    return Check(model.name, "served config", "-", not differences, "; ".join(differences) or matched)


# -- inference ---------------------------------------------------------------------------------
def _inference_checks(server: TritonProcess, loaded: LoadedManifest, model: ModelSpec, config_file: str,
                      progress: Progress, allow_paths: Sequence[Path]) -> list[Check]:
    progress(f"{model.name}: loading eager model")
    reference = EagerReference.load(model, loaded.directory, allow_paths)
    config = parse_text((Path(server.repository) / model.name / config_file).read_text())
    positions = reference.positions([o.name for o in config.output])
    if model.sequence_batching is not None:
        return _sequence_checks(server, model, config, reference, positions, progress)
    checks = []
    for plan in plans_for(model):
        inputs = make_inputs(model, plan)
        expected = reference.outputs(inputs)
        shape = "x".join(str(s) for s in inputs[model.inputs[0].name].shape)
        for protocol in ("http", "grpc"):
            progress(f"{model.name}: {plan.label} over {protocol}")
            try:
                served = _infer(server, protocol, model, config, inputs)
                detail = shape_problem(config, served) or mismatch(model, expected,
                                                                   _ordered(config, served, expected, positions))
            except Exception as err:  # a refused request is a failed check, not a crash
                detail = f"request failed: {str(err).strip().splitlines()[0]}"
            checks.append(Check(model.name, f"{plan.label} [{shape}]", protocol, detail is None,
                                detail or "equal to eager PyTorch"))
    if model.max_batch_size > 0:
        checks.append(_concurrent_check(server, model, config, reference, positions))
    checks.extend(_hostile_checks(server, model, config, reference, positions, progress))
    checks.extend(_kept_version_checks(server, model, config, reference, positions, progress))
    return checks


#: verify's sequences: ids and how many requests each sends, interleaved (one request of each in turn).
SEQUENCE_IDS = (1001, 1002, 1003)
SEQUENCE_LENGTH = 3


def _sequence_checks(server: TritonProcess, model: ModelSpec, config: pb.ModelConfig, reference: EagerReference,
                     positions: dict[str, int], progress: Progress) -> list[Check]:
    """A sequence model: three sequences of three requests, interleaved, over HTTP and gRPC; each request carries its
    sequence id (and start, end flags) but no control input, which the server fills. Each answer is compared with eager
    PyTorch run with the controls as the server gives them: start 1 on a sequence's first request, end 1 on its last,
    ready 1, corrid the sequence id. Hostile requests and bursts are not sent: each would need a sequence of its own."""
    import torch

    from compiler import datatypes as types

    settings = model.sequence_batching
    assert settings is not None
    controls = settings.control_inputs()
    base = plans_for(model)[0]
    batch = 1 if model.max_batch_size > 0 else None
    # Sequences at once: no more than the batcher has slots (a sequence beyond them waits in its backlog, and a
    # synchronous client with it, until another sequence ends or idles out).
    slots = settings.max_candidate_sequences if settings.strategy == "oldest" and settings.max_candidate_sequences \
        else max(1, model.max_batch_size) * sum(group.count for group in config.instance_group) or 1
    groups = [SEQUENCE_IDS[at:at + slots] for at in range(0, len(SEQUENCE_IDS), slots)]
    checks = []
    for number, protocol in enumerate(("http", "grpc")):
        progress(f"{model.name}: {len(SEQUENCE_IDS)} sequences of {SEQUENCE_LENGTH} requests over {protocol}, "
                 f"{slots} at once")
        client, module = server.client(protocol)
        problems = []
        for group, step in ((group, step) for group in groups for step in range(SEQUENCE_LENGTH)):
            for sequence in group:
                sid = sequence + 10 * number  # a fresh sequence per protocol
                inputs = make_inputs(model, Plan("sequence", batch, base.sizes, seed=100 + step * 7 + sid))
                flags = {"start": step == 0, "end": step == SEQUENCE_LENGTH - 1, "ready": True}
                for name, key in controls.items():
                    value = sid if key == "corrid" else int(flags[key])
                    inputs[name] = torch.full(tuple(inputs[name].shape), value,
                                              dtype=types.lookup(_dtype_of(model, name)).torch_dtype())
                try:
                    result = client.infer(model.name, infer_inputs(module, model, inputs), sequence_id=sid,
                                          sequence_start=step == 0, sequence_end=step == SEQUENCE_LENGTH - 1)
                    served = {out.name: result.as_numpy(out.name) for out in config.output}
                    expected = reference.outputs(inputs)
                    said = shape_problem(config, served) or mismatch(model, expected,
                                                                     _ordered(config, served, expected, positions))
                except Exception as err:
                    said = f"refused: {str(err).strip().splitlines()[0][:200]}"
                if said:
                    problems.append(f"sequence {sid} request {step + 1}: {said}")
        checks.append(Check(model.name, f"{len(SEQUENCE_IDS)} sequences x {SEQUENCE_LENGTH} requests, interleaved",
                            protocol, not problems, problems[0] if problems else
                            f"equal to eager PyTorch given the controls the server fills ({', '.join(controls.values())})"))
    return checks


def _dtype_of(model: ModelSpec, name: str) -> str:
    return next(spec.dtype for spec in model.inputs if spec.name == name)


def _kept_version_checks(server: TritonProcess, model: ModelSpec, config: pb.ModelConfig, reference: EagerReference,
                         positions: dict[str, int], progress: Progress) -> list[Check]:
    """Each earlier version keep_versions kept, served beside the built one: asked by version, its answers equal to
    its own file's in-process (the file was proved against its eager model when it was built; the manifest now
    describes the new version, so its file is the reference)."""
    from compiler.export.reference import load_built

    folder = Path(server.repository) / model.name
    record = read_record(folder) or {}
    checks = []
    for version in record.get("kept_versions") or []:
        progress(f"{model.name}: kept version {version}")
        try:
            kept = EagerReference(model, load_built(folder, version), binding=reference.binding)
            inputs = make_inputs(model, plans_for(model)[0])
            expected = kept.outputs(inputs)
            served = _infer(server, "http", model, config, inputs, version=version)
            detail = shape_problem(config, served) or mismatch(model, expected,
                                                               _ordered(config, served, expected, positions))
        except Exception as err:
            detail = f"version {version} failed: {str(err).strip().splitlines()[0][:200]}"
        checks.append(Check(model.name, f"kept version {version} ({layout.filename_of_export(model.export)})", "http",
                            detail is None, detail or "served beside the new version, equal to its own file"))
    return checks


def _hostile_checks(server: TritonProcess, model: ModelSpec, config: pb.ModelConfig, reference: EagerReference,
                    positions: dict[str, int], progress: Progress) -> list[Check]:
    """Every hostile request (export/hostile.py), each followed by a good one: the hostile one answered as its case
    says (refused, or as eager PyTorch answers), the good one equal to eager; and tritonserver still runs, the model
    READY: NVIDIA's PyTorch backend runs inside tritonserver, so a request that crashed it would end the server."""
    from compiler.export.guards import Guards
    from compiler.export.hostile import hostile_cases, triton_cases

    record = read_record(Path(server.repository) / model.name) or {}
    guards = Guards.from_record(record.get("guards"))
    cases = hostile_cases(model, guards, "aoti" if model.export == "aoti" else "torchscript") + triton_cases(model)
    good = make_inputs(model, Plan("after hostile", 1 if model.max_batch_size > 0 else None,
                                   plans_for(model)[0].sizes, seed=90))
    expected = reference.outputs(good)
    checks = []
    exits_before = len(server.supervisor.exits) if server.supervisor is not None else 0
    for protocol in ("http", "grpc"):
        progress(f"{model.name}: {len(cases)} hostile requests over {protocol}")
        failures = []
        for case in cases:
            verdict = judge(case, _answer(server, protocol, model, config, case.inputs, dict(case.datatypes)),
                            reference, model, config, positions)
            if verdict:
                failures.append(f"{case.label}: {verdict}")
            try:
                served = _infer(server, protocol, model, config, good)
                after = mismatch(model, expected, _ordered(config, served, expected, positions))
            except Exception as err:
                after = f"request failed: {str(err).strip().splitlines()[0]}"
            if after:
                failures.append(f"after {case.label}, a good request: {after}")
        checks.append(Check(model.name, "hostile requests", protocol, not failures, "; ".join(failures) or
                            f"{len(cases)} answered as documented (refused, or as eager PyTorch), each followed by a "
                            "correct answer"))
    checks.append(_class_count_check(server, model, config, good, expected, positions))
    exits = server.supervisor.exits[exits_before:] if server.supervisor is not None else []
    alive = server.running()
    state = next((s.described for s in server.model_states() if s.name == model.name), "absent") if alive else ""
    checks.append(Check(model.name, "server lived", "-", alive and not exits and state == "READY",
                        f"tritonserver runs and {model.name} is {state} after the hostile set" if alive and not exits
                        else "tritonserver exited during the hostile set: " + "; ".join(
                            [e.line() + ": " + " | ".join(e.log_tail[-3:]) for e in exits] or
                            ["\n".join(server.log_lines_for(None, 15))])))
    return checks


def _answer(server: TritonProcess, protocol: str, model: ModelSpec, config: pb.ModelConfig,
            inputs: Sendable, datatypes: dict[str, str]) -> Arrays | Exception:
    try:
        return _infer(server, protocol, model, config, inputs, datatypes)
    except Exception as err:
        return err


def judge(case: Any, outcome: Arrays | Exception, reference: EagerReference, model: ModelSpec,
          config: pb.ModelConfig, positions: dict[str, int]) -> str | None:
    """What is wrong with a hostile request's answer (None: as its case says)."""
    from compiler.export.hostile import EAGER, REFUSED

    if case.expect == REFUSED:
        if not isinstance(outcome, Exception):
            return "answered; it must be refused"
        return refusal_problem(outcome)
    if case.expect != EAGER:
        return None
    try:
        expected = reference.outputs(case.inputs)
    except Exception as err:
        return None if isinstance(outcome, Exception) else f"answered where eager PyTorch raises ({err})"
    if isinstance(outcome, Exception):
        return f"refused ({str(outcome).strip().splitlines()[0][:160]}) where eager PyTorch answers"
    return mismatch(model, expected, _ordered(config, outcome, expected, positions))


def refusal_problem(outcome: Exception) -> str | None:
    """What is wrong with the way a request was refused (None: nothing). Triton's own checks refuse with 400
    (INVALID_ARGUMENT); a guard compiled into the model raises, and NVIDIA's PyTorch backend answers every exception
    of a model with 500 (INTERNAL; r26.05: src/pt/model_instance_state.cc:361, src/pt2/model_instance_state.cc:411; r24.10:
    src/libtorch.cc:1665), carrying the guard's words or those of AOTInductor's input checks (guards.REFUSED): that
    is a refusal too. A 500 without them is the model failing in a way nobody guarded."""
    from compiler.export.guards import REFUSED

    status = str(getattr(outcome, "status", lambda: "")() or "")
    if status.startswith("4") or "INVALID_ARGUMENT" in status:
        return None
    if any(mark in str(outcome) for mark in REFUSED):
        return None
    return f"refused with {status or 'no status'} ({str(outcome).strip().splitlines()[0][:160]}), not by a guard"


def shape_problem(config: pb.ModelConfig, served: Arrays) -> str | None:
    """A served output whose shape the config's dims do not admit (Triton does not check output shapes: a model
    whose output size depends on the values, such as x[x > 0], answers with whatever it computed)."""
    for out in config.output:
        got = list(served[out.name].shape)
        if config.max_batch_size > 0:
            got = got[1:]
        admitted = [list(out.dims)] + ([list(out.reshape.shape)] if out.HasField("reshape") else [])
        if not any(len(want) == len(got) and all(w in (-1, g) for w, g in zip(want, got)) for want in admitted):
            return (f"output '{out.name}' came back with dims {got}, the config says {list(out.dims)}: its size "
                    "depends on the input values, so clients get shapes the config does not declare")
    return None


def _ordered(config: pb.ModelConfig, served: Arrays, expected: list[Any], index: dict[str, int]) -> list[Any]:
    """Served outputs in the model's order, shaped as the model returns them."""

    ordered: list[Any] = [None] * len(config.output)
    for out in config.output:
        position = index[out.name]
        value = datatypes.to_torch(served[out.name])
        if out.HasField("reshape") and position < len(expected) and value.numel() == expected[position].numel():
            value = value.reshape(expected[position].shape)
        ordered[position] = value
    return ordered


def _infer(server: TritonProcess, protocol: str, model: ModelSpec, config: pb.ModelConfig,
           inputs: Sendable, datatypes: dict[str, str] | None = None, version: int | None = None) -> Arrays:
    client, client_module = server.client(protocol)
    result = client.infer(model.name, infer_inputs(client_module, model, inputs, datatypes),
                          model_version=str(version) if version is not None else "")
    return {out.name: result.as_numpy(out.name) for out in config.output}


def _class_count_check(server: TritonProcess, model: ModelSpec, config: pb.ModelConfig, good: Sendable,
                       expected: list[Any], positions: dict[str, int]) -> Check:
    """class_count asked of each output (Triton's classification extension; ensemble_image_client.py asks it of
    every output it is given): answered, its first class eager's top one, or refused cleanly (400: Triton classifies
    no FP16, for one), and the server serves on. Not asked of a TYPE_STRING output: the embedded 24.10 server exits on
    that (STRING-CLASSIFICATION)."""
    import tritonclient.http as httpclient

    from compiler.compat.server_crashes import STRING_CLASSIFICATION, string_outputs

    strings = string_outputs(config)
    if strings:
        return Check(model.name, "class_count on every output", "http", False,
                     f"not asked of {', '.join(strings)}: TYPE_STRING; {STRING_CLASSIFICATION.said('24.10')}")
    client = httpclient.InferenceServerClient(server.http_url, network_timeout=300)
    said: list[str] = []
    wrong: list[str] = []
    for out in config.output:
        asked = [httpclient.InferRequestedOutput(out.name, class_count=1)]
        try:
            result = client.infer(model.name, infer_inputs(httpclient, model, good), outputs=asked)
        except Exception as err:
            status = str(getattr(err, "status", lambda: "")() or "")
            text = str(err).strip().splitlines()[0][:120]
            (said if status.startswith("4") else wrong).append(f"{out.name} refused ({text})")
            continue
        first = result.as_numpy(out.name).reshape(-1)[0]
        index = int((first.decode() if isinstance(first, bytes) else str(first)).split(":")[1])
        eager = expected[positions[out.name]].reshape(-1)
        top = int(eager.float().argmax()) if eager.numel() else -1
        close = abs(float(eager[index]) - float(eager[top])) <= 1e-4 * max(1.0, abs(float(eager[top])))
        if index != top and not close:  # within a tolerance of eager's top, any of them (ties, rounding)
            wrong.append(f"{out.name}: Triton's top class is {index}, eager's is {top}")
        else:
            said.append(f"{out.name} answered, its top class eager's")
    return Check(model.name, "class_count on every output", "http", not wrong, "; ".join(wrong + said))


def _concurrent_check(server: TritonProcess, model: ModelSpec, config: pb.ModelConfig, reference: EagerReference,
                      positions: dict[str, int], bursts: int = 3) -> Check:
    """Bursts of concurrent requests, every answer checked. Whether the dynamic batcher merged them is read from
    the server's statistics and said: a burst answered in as many executions as requests proves the answers,
    not batching (the build's batch-invariance proof is what stands for batching then)."""
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(server.http_url, concurrency=CONCURRENT_REQUESTS, network_timeout=300)
    base = plans_for(model)[0]
    failures: list[str] = []
    shed = answered = 0
    counts: list[tuple[int, int]] = []  # (requests, executions) per burst, from the server's statistics
    before = settled(server.http_url, [model.name])[model.name]
    for burst in range(bursts):
        answered_before = answered
        pending = []
        for number in range(CONCURRENT_REQUESTS):
            inputs = make_inputs(model, Plan(f"concurrent {number}", 1, base.sizes, seed=100 + burst * 100 + number))
            pending.append((inputs, client.async_infer(model.name, infer_inputs(httpclient, model, inputs))))
        for number, (inputs, handle) in enumerate(pending):
            try:
                result = handle.get_result()
                served = {out.name: result.as_numpy(out.name) for out in config.output}
                expected = reference.outputs(inputs)
                detail = shape_problem(config, served) or mismatch(model, expected,
                                                                   _ordered(config, served, expected, positions))
                answered += 1
            except Exception as err:
                detail = f"request failed: {str(err).strip().splitlines()[0]}"
                if was_shed(err):  # refused by the queue policy on a busy machine: as configured, not wrong
                    shed, detail = shed + 1, ""
            if detail:
                failures.append(f"request {number}: {detail}")
        # every answer of this burst counted in the statistics before they are read (they land after the answers)
        after = settled(server.http_url, [model.name],
                        {model.name: before.requests + answered - answered_before})[model.name]
        spent = after - before
        executions, requests = spent.executions, spent.requests
        counts.append((requests, executions))
        before = after
        if failures or executions < requests or not config.HasField("dynamic_batching"):
            break  # merged (or cannot be, or failed): nothing more to learn from another burst
    batching = _batching_said(counts, config.HasField("dynamic_batching"))
    if not answered:
        failures.append(f"none answered: {shed} shed by the queue policy")
    elif shed:
        batching += f"; {shed} shed by the queue policy (its timeout or size, as under overload)"
    return Check(model.name, f"{CONCURRENT_REQUESTS} concurrent requests", "http", not failures,
                 "; ".join(failures) or f"equal to eager PyTorch; {batching}")


def _batching_said(counts: list[tuple[int, int]], dynamic: bool) -> str:
    """What the server's statistics showed about merging, for the bursts sent ((requests, executions) each; the
    last is the one that merged, if one did). A shed request is in no count, so bursts may differ in size."""
    requests, executions = counts[-1]
    if not dynamic:
        return f"{requests} requests in {executions} executions; no dynamic batching in this config"
    if executions < requests:
        return f"merged by the dynamic batcher: {requests} requests in {executions} executions"
    sizes = {r for r, _ in counts}
    each = (f"{requests} requests in {executions} executions in each of {len(counts)} bursts" if len(sizes) == 1
            else f"{', '.join(str(r) for r, _ in counts)} requests in as many executions in {len(counts)} bursts")
    return f"not merged: {each}, so this shows the answers, not batching (batch invariance was proved by the build)"

