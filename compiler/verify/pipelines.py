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
from compiler.repository.record import recorded_outputs
from compiler.server.process import TritonProcess

Progress = Callable[[str], None]
#: What a step cannot take, per input kind: the requests a client gets wrong, or sends to hurt.
REFUSED = "refused"
ANSWERED = "answered as in-process"


def hostile_raw(kind: str, settings: dict[str, Any]) -> list[tuple[str, bytes, str]]:
    """(label, raw input, what must happen) for a pipeline whose first step is `kind`."""
    from compiler.pipeline.hostile import bomb_png, long_text, strip_png

    if kind == "tokenize":
        return [("text not UTF-8", b"\xff\xfe not UTF-8", REFUSED),
                (f"a text over max_bytes ({settings['max_bytes']})", long_text(int(settings["max_bytes"]) + 1),
                 REFUSED)]
    if kind == "image":
        return [("bytes that are no image", b"these bytes are no image", REFUSED),
                (f"a 20000x20000 PNG bomb (max_pixels {settings['max_pixels']:,})", bomb_png(20000), REFUSED),
                ("a 10000x1 strip", strip_png(10000), ANSWERED)]
    return []


def pipeline_checks(server: TritonProcess, loaded: LoadedManifest, repository: Path, progress: Progress,
                    allow_paths: Sequence[Path] = ()) -> list[Any]:
    from compiler.manifest.wiring import plan_all
    from compiler.pipeline.proof import Chain, eager_runners, raw_inputs, step_folders
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
        last = next(models[s.model] for s in reversed(plan.steps) if not s.generated)
        for protocol in ("http", "grpc"):
            progress(f"{plan.name}: {len(inputs)} raw inputs over {protocol}")
            checks.append(_answers(server, protocol, plan, chain, inputs, last))
            checks.append(_hostile(server, protocol, plan, chain, inputs[0], last))
            checks.append(_classified(server, protocol, plan, chain, inputs[0]))
    return checks


def _request(server: TritonProcess, protocol: str, plan: Any, items: list[str | bytes],
             class_count: dict[str, int] | None = None) -> dict[str, np.ndarray]:
    from compiler.pipeline.proof import as_request

    if protocol == "http":
        import tritonclient.http as module

        client: Any = module.InferenceServerClient(server.http_url, network_timeout=300)
    else:
        import tritonclient.grpc as module  # type: ignore[no-redef]

        client = module.InferenceServerClient(server.grpc_url)
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

    cases = hostile_raw(plan.steps[0].kind, plan.steps[0].settings)
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
