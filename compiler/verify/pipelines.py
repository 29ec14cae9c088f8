"""verify for pipelines: each served ensemble READY, its config the one built, and raw texts or image bytes sent over
HTTP and gRPC (one at a time, and all in one batch) answered as the same steps answer in-process around eager
PyTorch; what a step cannot take (text that is not UTF-8, bytes that are no image) refused with a 400, and a good
request after it answered right.

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
#: What a step cannot take, per input kind: the request a client gets wrong.
BROKEN = {"tokenize": b"\xff\xfe not UTF-8", "image": b"these bytes are no image"}


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
            checks.append(_broken(server, protocol, plan, chain, inputs[0], last))
    return checks


def _request(server: TritonProcess, protocol: str, plan: Any, items: list[str | bytes]) -> dict[str, np.ndarray]:
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
    result = client.infer(plan.name, [item])
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


def _broken(server: TritonProcess, protocol: str, plan: Any, chain: Any, good: str | bytes, model: Any) -> Any:
    from compiler.pipeline.proof import as_request, difference
    from compiler.verify.result import Check

    kind = plan.steps[0].kind
    if kind not in BROKEN:
        return Check(plan.name, "a broken raw input", protocol, True, f"none to send to a {kind} step")
    try:
        _request(server, protocol, plan, [BROKEN[kind]])
        return Check(plan.name, "a broken raw input", protocol, False, "answered; it must be refused")
    except Exception as err:
        status = str(getattr(err, "status", lambda: "")() or "")
        refused = status.startswith("4") or "INVALID_ARGUMENT" in status
    try:
        detail = difference(model, chain.run({plan.inputs[0].name: as_request([good])}),
                            _request(server, protocol, plan, [good]), plan.outputs)
    except Exception as err:
        detail = f"request failed: {str(err).strip().splitlines()[0]}"
    ok = refused and not detail
    return Check(plan.name, "a broken raw input", protocol, ok,
                 f"refused with {status}, then a good input answered right" if ok else
                 f"refused with {status or 'no status'} (a 4xx is due); after it: {detail or 'answered right'}")
