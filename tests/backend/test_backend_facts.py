"""The AOTI release rules (compat/aoti_rules.py) against NVIDIA's PyTorch backend itself: probe packages served by
the library built from each pinned branch. Where the rules see nothing wrong, the model loads and answers right,
merged requests included; where a rule cites a fact of the backend, the backend shows it. And TorchScript, which the
rules let batch, merges right."""

from __future__ import annotations

import concurrent.futures
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from compiler.backend.nvidia.sources import BY_REF
from compiler.bench.stats import settled
from compiler.compat.aoti_rules import FACTS, aoti_violations
from compiler.export.aoti import RUNTIME_CHECK_OPTIONS, at_least_one
from compiler.releases import Release
from compiler.server.process import TritonProcess

pytestmark = [pytest.mark.slow, pytest.mark.tritonserver]


class One(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2 + 1


class Mixed(torch.nn.Module):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x * 2 + y


class Half(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.float() * 2).to(torch.bfloat16)


def expected(package: str, x: np.ndarray) -> np.ndarray:
    return {"one": x * 2 + 1, "mixed": x * 3, "kwonly": x * 2 + 1, "traced": x * 2 + 1}[package]


@dataclass(frozen=True)
class Probe:
    name: str
    package: str  # one | mixed | kwonly | bf16 (a .pt2 file each), traced (TorchScript)
    inputs: tuple[str, ...]
    output: str
    dynamic: bool = False
    dtype: str = "FP32"
    one_at_a_time: bool = False  # dynamic batching that never merges: preferred_batch_size [1], no queue delay


PROBES = {
    "r26.05": [
        Probe("one_args", "one", ("ARGS[0]",), "RESULT"),
        Probe("one_ordinal", "one", ("INPUT__0",), "OUTPUT__0"),
        Probe("one_merged", "one", ("ARGS[0]",), "RESULT", dynamic=True),
        Probe("one_queued", "one", ("ARGS[0]",), "RESULT", dynamic=True, one_at_a_time=True),
        Probe("mixed_keyword", "mixed", ("ARGS[0]", "KWARGS[y]"), "RESULT"),
        Probe("keywords_only", "kwonly", ("KWARGS[x]",), "RESULT"),
        Probe("bf16", "bf16", ("ARGS[0]",), "RESULT", dtype="BF16"),
        Probe("traced_merged", "traced", ("x",), "OUTPUT__0", dynamic=True),
    ],
    "r26.04": [
        Probe("one_ordinal", "one", ("INPUT__0",), "OUTPUT__0"),
        Probe("two_ordinal", "mixed", ("INPUT__0", "INPUT__1"), "OUTPUT__0"),
        Probe("two_merged", "mixed", ("INPUT__0", "INPUT__1"), "OUTPUT__0", dynamic=True),
    ],
    "r26.03": [
        Probe("one_ordinal", "one", ("INPUT__0",), "OUTPUT__0"),
        Probe("two_ordinal", "mixed", ("INPUT__0", "INPUT__1"), "OUTPUT__0"),
    ],
    "r24.10": [Probe("traced_merged", "traced", ("x",), "OUTPUT__0", dynamic=True)],
}
#: What the server says when a fact's rule is broken (the load's error), or None where it shows in the answers.
SIGNS = {"AOTI-MERGE": None, "AOTI-INPUT-COUNT": "configuration expects 1 inputs, but model expects 2 inputs",
         "AOTI-KWARGS": ("is not found in model input map", "Failed to parse input call specification"),
         "AOTI-BF16": "Unsupported datatype TYPE_BF16"}


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small package per call form, and a trace (about 40 s of AOTInductor compiles)."""
    folder = tmp_path_factory.mktemp("probes")
    batch = torch.export.Dim("batch", min=1, max=8)
    x = torch.randn(2, 4)
    forms = {"one": (One(), (x,), None, ({0: batch},)),
             "mixed": (Mixed(), (x,), {"y": x}, {"x": {0: batch}, "y": {0: batch}}),
             "kwonly": (One(), (), {"x": x}, {"x": {0: batch}}),
             "bf16": (Half(), (x.to(torch.bfloat16),), None, ({0: batch},))}
    for name, (module, args, kwargs, dims) in forms.items():
        program = torch.export.export(module, args, kwargs, dynamic_shapes=dims)
        with at_least_one():  # compiled as the build compiles: its input checks take a batch of 1
            torch._inductor.aoti_compile_and_package(program, package_path=str(folder / f"{name}.pt2"),
                                                     inductor_configs=RUNTIME_CHECK_OPTIONS)
    torch.jit.trace(One(), x).save(str(folder / "traced.pt"))
    return folder


def _repository(root: Path, probes: list[Probe], packages: Path) -> Path:
    for probe in probes:
        (root / probe.name / "1").mkdir(parents=True)
        traced = probe.package == "traced"
        shutil.copy(packages / (f"{probe.package}.pt" if traced else f"{probe.package}.pt2"),
                    root / probe.name / "1" / ("model.pt" if traced else "model.pt2"))
        text = f'name: "{probe.name}"\nmax_batch_size: 8\n' + (
            'platform: "pytorch_libtorch"\n' if traced else
            'platform: "torch_aoti"\nbackend: "pytorch_aoti"\ndefault_model_filename: "model.pt2"\n')
        text += "".join(f'input {{ name: "{n}" data_type: TYPE_{probe.dtype} dims: [4] }}\n' for n in probe.inputs)
        text += f'output {{ name: "{probe.output}" data_type: TYPE_{probe.dtype} dims: [4] }}\n'
        text += ("dynamic_batching { preferred_batch_size: [1] max_queue_delay_microseconds: 0 }\n"
                 if probe.one_at_a_time else "dynamic_batching { max_queue_delay_microseconds: 300000 }\n"
                 if probe.dynamic else "")
        (root / probe.name / "config.pbtxt").write_text(text + "instance_group [{ kind: KIND_CPU }]\n")
    return root


def _ask(url: str, probe: Probe, x: np.ndarray) -> np.ndarray:
    import tritonclient.http as http

    client = http.InferenceServerClient(url, network_timeout=30)
    inputs = []
    for name in probe.inputs:
        tensor = http.InferInput(name, list(x.shape), probe.dtype)
        tensor.set_data_from_numpy(x)
        inputs.append(tensor)
    return client.infer(probe.name, inputs).as_numpy(probe.output)  # type: ignore[no-any-return]


def _observe(server: TritonProcess, probe: Probe) -> str | None:
    """What went wrong serving the probe (None: it loaded, and answered right alone and, if it batches, merged)."""
    try:
        server.load_model(probe.name, timeout=120)
    except Exception as err:  # noqa: BLE001 - the load's error is what is observed
        return f"load: {err}"
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    answer = _ask(server.http_url, probe, x)
    if answer.shape != x.shape or not np.allclose(answer, expected(probe.package, x)):
        return f"one request of batch 2: {answer.shape} {answer.ravel()[:4]}"
    if probe.dynamic:
        singles = [np.full((1, 4), float(i), dtype=np.float32) for i in range(6)]
        with concurrent.futures.ThreadPoolExecutor(len(singles)) as pool:
            answers = list(pool.map(lambda v: _ask(server.http_url, probe, v), singles))
        wrong = [a.shape for a, v in zip(answers, singles) if a.shape != v.shape or not np.allclose(a, expected(
            probe.package, v))]
        if wrong:
            return f"merged requests: {len(wrong)} of {len(singles)} answered wrong (shapes {wrong})"
        if probe.one_at_a_time:  # the request of batch 2 and the singles, counted once their statistics are in
            stats = settled(server.http_url, [probe.name], {probe.name: 1 + len(singles)})[probe.name]
            if stats.executions != stats.requests:
                return f"merged: {stats.requests} requests in {stats.executions} executions"
    return None


@pytest.mark.parametrize("ref", list(PROBES))
def test_the_rules_match_what_the_backend_does(ref: str, packages: Path, tmp_path: Path) -> None:
    branch = BY_REF[ref]
    release = Release.parse(branch.since)
    probes = PROBES[ref]
    with TritonProcess(_repository(tmp_path / "repo", probes, packages), explicit_models=True,
                       pytorch_backend=branch) as server:
        server.wait_live(120)
        for probe in probes:
            observed = _observe(server, probe)
            if probe.package == "traced":
                assert observed is None, f"{ref} {probe.name}: TorchScript: {observed}"
                continue
            violations = aoti_violations(release, 8, [(n, probe.dtype) for n in probe.inputs],
                                         [(probe.output, probe.dtype)], probe.dynamic and not probe.one_at_a_time)
            facts = [fact for fact in FACTS if any(fact.code in v.message for v in violations)]
            if not violations:
                assert observed is None, f"{ref} {probe.name}: the rules allow it, but {observed}"
            for fact in facts:
                assert observed is not None, f"{ref} {probe.name}: {fact.code} predicts a failure; it served right"
                sign = SIGNS[fact.code]
                if sign is None:
                    assert observed.startswith("merged requests"), observed
                else:
                    assert any(s in observed for s in ((sign,) if isinstance(sign, str) else sign)), observed
            server.unload_model(probe.name)


def test_every_fact_is_probed() -> None:
    seen = set()
    for ref, probes in PROBES.items():
        release = Release.parse(BY_REF[ref].since)
        for probe in probes:
            for violation in aoti_violations(release, 8, [(n, probe.dtype) for n in probe.inputs],
                                             [(probe.output, probe.dtype)], probe.dynamic and not probe.one_at_a_time):
                seen |= {fact.code for fact in FACTS if fact.code in violation.message}
    assert seen == {fact.code for fact in FACTS}
