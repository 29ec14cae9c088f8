"""verify for pipelines: each served ensemble READY, its config the one built, and raw texts or image bytes sent over
HTTP and gRPC (one at a time, and all in one batch) answered as the same steps answer in-process around eager
PyTorch; what a step must not take (text that is not UTF-8 or longer than its max_bytes, bytes that are no image, an
image bomb over its max_pixels) refused with a 400, what it must take cheaply (a 10000x1 strip) answered as
in-process, and a good request after each answered right; and class_count asked of every output answered, the top
class of a labelled one the one in-process.

    checks = pipeline_checks(server, loaded, repository, progress)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from compiler.manifest import LoadedManifest
from compiler.manifest.step_settings import StepSettings
from compiler.repository.record import recorded_outputs
from compiler.server.process import TritonProcess

Progress = Callable[[str], None]
#: What a step cannot take, per input kind: the requests a client gets wrong, or sends to hurt.
REFUSED = "refused"
ANSWERED = "answered as in-process"


def hostile_raw(settings: StepSettings) -> list[tuple[str, bytes, str]]:
    """(label, raw input, what must happen) for a pipeline whose first step has these settings."""
    from compiler.pipeline.hostile import bomb_png, long_text, strip_png

    if settings["kind"] == "tokenize":
        return [("text not UTF-8", b"\xff\xfe not UTF-8", REFUSED),
                (f"a text over max_bytes ({settings['max_bytes']})", long_text(int(settings["max_bytes"]) + 1),
                 REFUSED)]
    if settings["kind"] == "image":
        return [("bytes that are no image", b"these bytes are no image", REFUSED),
                (f"a 20000x20000 PNG bomb (max_pixels {settings['max_pixels']:,})", bomb_png(20000), REFUSED),
                ("a 10000x1 strip", strip_png(10000), ANSWERED)]
    return []


def pipeline_checks(server: TritonProcess, loaded: LoadedManifest, repository: Path, progress: Progress,
                    allow_paths: Sequence[Path] = ()) -> list[Any]:
    from compiler.manifest.wiring import plan_all
    from compiler.pipeline.proof import Chain, eager_runners, last_model, raw_inputs, step_folders
    from compiler.verify.result import Check

    if not loaded.manifest.pipelines:
        return []
    outputs = recorded_outputs(repository, (m.name for m in loaded.manifest.models))
    states = {s.name: s.described for s in server.model_states()}  # with Triton's reason when not READY
    models = {m.name: m for m in loaded.manifest.models}
    checks: list[Any] = []
    for plan in plan_all(loaded, outputs):
        state = states.get(plan.name, "absent")
        checks.append(Check(plan.name, "ready", "-", state == "READY", state))
        if state != "READY":
            continue
        served = server.served_config(plan.name)
        want = ([(t.name, t.dtype, t.dims) for t in plan.inputs], [(t.name, t.dtype, t.dims) for t in plan.outputs])
        got = ([(t["name"], t["data_type"], [int(d) for d in t["dims"]]) for t in served.get("input", [])],
               [(t["name"], t["data_type"], [int(d) for d in t["dims"]]) for t in served.get("output", [])])
        checks.append(Check(plan.name, "served config", "-", want == got,
                            "matches the pipeline's plan" if want == got else f"planned {want}, served {got}"))
        chain = Chain(plan, step_folders(plan, repository),
                      eager_runners(plan, models, loaded.directory, allow_paths, progress))
        inputs = raw_inputs(plan, repository, loaded.directory)
        last = last_model(plan, models)
        for protocol in ("http", "grpc"):
            progress(f"{plan.name}: {len(inputs)} raw inputs over {protocol}")
            checks.append(_answers(server, protocol, plan, chain, inputs, last))
            checks.append(_hostile(server, protocol, plan, chain, inputs[0], last))
            checks.append(_classified(server, protocol, plan, chain, inputs[0]))
        progress(f"{plan.name}: {CONCURRENT} concurrent requests")
        checks.append(_merged(server, plan, chain, inputs, last))
    return checks


#: verify's concurrent requests to a pipeline: one input each, of as many lengths (or sizes) as there are requests.
CONCURRENT = 16


def varied(inputs: list[str | bytes], count: int) -> list[str | bytes]:
    """`count` raw inputs from `inputs`: texts of `count` different lengths (the words of the proof's texts,
    1, 3, 5, ... of them), images (or anything else) as given, in turn."""
    words = " ".join(item for item in inputs if isinstance(item, str)).split()
    if not words:
        return [inputs[number % len(inputs)] for number in range(count)]
    return [" ".join((words * (2 * count))[number:number + 1 + 2 * number]) for number in range(count)]


def _merged(server: TritonProcess, plan: Any, chain: Any, inputs: list[str | bytes], model: Any,
            bursts: int = 3) -> Any:
    """CONCURRENT requests of one input each, all different, sent at once: each answered as it is alone in-process;
    how many executions the model step (or encoder) ran them in, from Triton's statistics, said; up to `bursts`
    bursts until one merges."""
    import tritonclient.http as httpclient

    from compiler.bench.stats import settled
    from compiler.pipeline.proof import as_request, difference, runs_a_model
    from compiler.verify.overload import was_shed
    from compiler.verify.result import Check

    step = next(s for s in plan.steps if runs_a_model(s))
    items = varied(inputs, CONCURRENT)
    wanted = [chain.run({plan.inputs[0].name: as_request([item])}) for item in items]
    client = httpclient.InferenceServerClient(server.http_url, concurrency=CONCURRENT, network_timeout=300)
    failures: list[str] = []
    shed = answered = 0  # shed: refused by the queue policy (a slow model's budget on a busy machine), not an error
    executions = requests = 0
    before = settled(server.http_url, [step.model])[step.model]
    for _ in range(bursts):
        answered_before = answered
        pending = []
        for item in items:
            data = as_request([item])
            tensor = httpclient.InferInput(plan.inputs[0].name, list(data.shape), "BYTES")
            tensor.set_data_from_numpy(data)
            pending.append(client.async_infer(plan.name, [tensor]))
        for number, (handle, want) in enumerate(zip(pending, wanted)):
            try:
                result = handle.get_result()
                detail = difference(model, want, {t.name: result.as_numpy(t.name) for t in plan.outputs},
                                    plan.outputs)
                answered += 1
            except Exception as err:
                detail = f"request failed: {str(err).strip().splitlines()[0][:160]}"
                if was_shed(err):
                    shed, detail = shed + 1, ""
            if detail:
                failures.append(f"input {number}: {detail}")
        # each answered input reached the model step once; its statistics land after the answers (stats.settled)
        after = settled(server.http_url, [step.model],
                        {step.model: before.requests + answered - answered_before})[step.model]
        spent = after - before
        executions, requests = spent.executions, spent.inferences
        before = after
        if failures or executions < requests:
            break
    merged = f"{requests} inputs in {executions} executions of {step.model}" + (
        f" (mean batch {requests / executions:.1f})" if executions else "")
    if not answered:
        failures.append(f"none answered: {shed} shed by the queue policy")
    elif shed:
        merged += f"; {shed} shed by the queue policy (its timeout or size, as under overload)"
    if executions >= requests:
        # not a failure: whether requests meet in the queue is the machine's timing (a step before the model that is
        # slower than the model hands it one request at a time); the build proved merged requests in-process
        merged += f", none merged in {bursts} bursts (the model was free whenever one came; max_queue_delay_" \
                  "microseconds lets it wait for more)"
    return Check(plan.name, f"{CONCURRENT} concurrent requests", "http", not failures,
                 "; ".join(failures) or f"each equal to the steps around eager PyTorch alone; {merged}")


def _request(server: TritonProcess, protocol: str, plan: Any, items: list[str | bytes],
             class_count: dict[str, int] | None = None) -> dict[str, np.ndarray]:
    from compiler.pipeline.proof import as_request

    client, module = server.client(protocol)
    data = as_request(items)
    item = module.InferInput(plan.inputs[0].name, list(data.shape), "BYTES")
    item.set_data_from_numpy(data)
    asked = [module.InferRequestedOutput(t.name, class_count=(class_count or {}).get(t.name, 0)) for t in plan.outputs]
    result = client.infer(plan.name, [item], outputs=asked)
    return {t.name: result.as_numpy(t.name) for t in plan.outputs}


def _answers(server: TritonProcess, protocol: str, plan: Any, chain: Any, inputs: list[str | bytes],
             model: Any) -> Any:
    from compiler.pipeline.proof import as_request, difference
    from compiler.verify.result import Check

    failures = []
    for number, item in enumerate(inputs):
        want = chain.run({plan.inputs[0].name: as_request([item])})
        try:
            detail = difference(model, want, _request(server, protocol, plan, [item]), plan.outputs)
        except Exception as err:
            detail = f"request failed: {str(err).strip().splitlines()[0]}"
        if detail:
            failures.append(f"input {number}: {detail}")
    batch = inputs[: plan.spec.max_batch_size]
    want = chain.run({plan.inputs[0].name: as_request(batch)})
    try:
        detail = difference(model, want, _request(server, protocol, plan, batch), plan.outputs)
    except Exception as err:
        detail = f"request failed: {str(err).strip().splitlines()[0]}"
    if detail:
        failures.append(f"a batch of {len(batch)}: {detail}")
    return Check(plan.name, f"{len(inputs)} raw inputs, alone and in a batch", protocol, not failures,
                 "; ".join(failures) or "equal to the steps around eager PyTorch")


def _hostile(server: TritonProcess, protocol: str, plan: Any, chain: Any, good: str | bytes, model: Any) -> Any:
    """Each hostile raw input (hostile_raw) as its case says, each followed by a good one answered right."""
    from compiler.pipeline.proof import as_request, difference
    from compiler.verify.result import Check

    cases = hostile_raw(plan.steps[0].settings)
    if not cases:
        return Check(plan.name, "hostile raw inputs", protocol, True, f"none to send to a {plan.steps[0].kind} step")
    failures = []
    for label, raw, expect in cases:
        try:
            answer = _request(server, protocol, plan, [raw])
            if expect == REFUSED:
                failures.append(f"{label}: answered; it must be refused")
            else:
                detail = difference(model, chain.run({plan.inputs[0].name: as_request([raw])}), answer, plan.outputs)
                if detail:
                    failures.append(f"{label}: {detail}")
        except Exception as err:
            status = str(getattr(err, "status", lambda: "")() or "")
            if expect != REFUSED:
                failures.append(f"{label}: refused ({str(err).strip().splitlines()[0][:120]})")
            elif not (status.startswith("4") or "INVALID_ARGUMENT" in status):
                failures.append(f"{label}: refused with {status or 'no status'} (a 4xx is due)")
        try:
            detail = difference(model, chain.run({plan.inputs[0].name: as_request([good])}),
                                _request(server, protocol, plan, [good]), plan.outputs)
        except Exception as err:
            detail = f"request failed: {str(err).strip().splitlines()[0]}"
        if detail:
            failures.append(f"after {label}, a good input: {detail}")
    return Check(plan.name, "hostile raw inputs", protocol, not failures, "; ".join(failures) or
                 f"{', '.join(label for label, _, _ in cases)}: as documented, each followed by a good input "
                 "answered right")


def _classified(server: TritonProcess, protocol: str, plan: Any, chain: Any, good: str | bytes) -> Any:
    """class_count asked of every output at once (Triton's classification extension), as ensemble_image_client.py
    asks it: answered; a labelled output's first class is the one the steps give in-process."""
    from compiler.compat.server_crashes import STRING
    from compiler.pipeline.proof import as_request
    from compiler.verify.result import Check

    strings = [t.name for t in plan.outputs if t.dtype == STRING]
    if strings:  # the embedded server is 24.10: asked of a TYPE_STRING output, it exits (STRING-CLASSIFICATION)
        return Check(plan.name, "class_count on every output", protocol, False,
                     f"not asked of {', '.join(strings)}: TYPE_STRING, and one such request ends tritonserver 24.10 "
                     "(STRING-CLASSIFICATION); use text_labels: false")
    counts = {t.name: min(3, int(t.dims[-1])) if t.dims and int(t.dims[-1]) > 0 else 1 for t in plan.outputs}
    try:
        answer = _request(server, protocol, plan, [good], counts)
    except Exception as err:
        return Check(plan.name, "class_count on every output", protocol, False,
                     f"refused: {str(err).strip().splitlines()[0][:160]}")
    want = chain.run({plan.inputs[0].name: as_request([good])})
    wrong = []
    for tensor in plan.outputs:
        if tensor.labels:
            first = answer[tensor.name].reshape(-1)[0]
            top = int(np.argmax(want[tensor.name].reshape(-1)))
            text = first.decode() if isinstance(first, bytes) else str(first)
            if text.split(":")[1] != str(top):
                wrong.append(f"{tensor.name}: Triton's first class is '{text}', in-process it is class {top}")
    return Check(plan.name, "class_count on every output", protocol, not wrong,
                 "; ".join(wrong) or f"answered for {', '.join(counts)}" + (
                     "; the labelled top class as in-process" if any(t.labels for t in plan.outputs) else ""))
