"""`check` against the real tritonserver: each folder in tests/check/cases/ is a repository and a verdict
(case.yaml). Both must accept it, or both must reject it for the same fault: the server in the words case.yaml
quotes from its log, `check` with the finding it names. Add a folder, get a test.

One tritonserver judges the cases of a shard (explicit model control): the repository it serves is emptied of the last
case's models (all unloaded first, the refused ones too) and filled with the next one's, whose models are then loaded
one by one; what the server said is read from its answers and the part of its log written during the case.

    case.yaml:  verdict: accept | reject
                model:   the model the fault belongs to (default: the only one)
                server:  words of the server's refusal        check:  words of check's error
                run:     true where check must load the model file to see the fault (default: --no-run)
                crashes: words of the server's crash, for a fault on which tritonserver 2.51 sometimes dies instead
                         of refusing; the crash then counts as its refusal (an unmarked case that crashes fails)
                ask:     {output, class_count}: a request sent once the models are loaded (each input a zero or a
                         short string), for a fault the server shows only when asked: an exit then is its refusal,
                         said as the signal or status it ended with

A server that died is started again for the next case.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from compiler.check import check_repository
from compiler.check.findings import ERROR
from compiler.errors import LoadUnanswered, ServerError
from compiler.server.process import TritonProcess

pytestmark = pytest.mark.tritonserver

CASES = sorted(p for p in (Path(__file__).parent / "cases").iterdir() if (p / "case.yaml").is_file())
RELEASE = "24.10"  # the embedded server's
IDENTITY = Path(__file__).parent / "identity_model.py"


def test_there_are_positive_and_negative_cases() -> None:
    verdicts = [YAML(typ="safe").load((case / "case.yaml").read_text())["verdict"] for case in CASES]
    assert verdicts.count("accept") >= 3 and verdicts.count("reject") >= 7


def _give_python_models_their_file(repository: Path) -> None:
    """Every Python-backend model of a case runs the same identity model.py (OUTPUT0 = INPUT0); the cases hold only
    what differs, their configs."""
    for config in repository.glob("*/config.pbtxt"):
        if 'backend: "python"' in config.read_text():
            for version in (p for p in config.parent.iterdir() if p.is_dir() and p.name.isdigit()):
                shutil.copy(IDENTITY, version / "model.py")


class Judge:
    """The judging tritonserver, started again after a case that killed it."""

    def __init__(self, repository: Path) -> None:
        self.repository = repository
        self.server = self._start()

    def _start(self) -> TritonProcess:
        server = TritonProcess(self.repository, explicit_models=True).start()
        server.wait_live(timeout=60)
        return server

    def restart(self) -> None:
        self.server.stop(grace=5)
        self.server = self._start()


@pytest.fixture(scope="module")
def judge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Judge]:
    repository = tmp_path_factory.mktemp("judged") / "models"
    repository.mkdir()
    judged = Judge(repository)
    yield judged
    judged.server.stop()


def _clear(server: TritonProcess, repository: Path) -> None:
    """Unload every model the last case left the server knowing, then empty the repository. Failed ones too: a model
    whose load failed stays in tritonserver's dependency graph until it is unloaded, files gone or not. An ensemble
    'e' refused in one case was judged again each time a later case loaded a model named 'm' ("in ensemble e, ensemble
    tensor OUTPUT0 is mapped from non-existing output NOPE in model m" in reshape_ok's log, a case without 'e'), and
    once tritonserver 2.51 died doing it, in CI. An unload request of a failed model ends that."""
    for state in server.model_states():
        try:
            server.unload_model(state.name, timeout=60)
        except ServerError:
            pass
    for item in repository.iterdir():
        shutil.rmtree(item)


def _judge(case: Path, judge: Judge) -> None:
    spec = YAML(typ="safe").load((case / "case.yaml").read_text())
    repository = judge.repository
    _clear(judge.server, repository)
    shutil.copytree(case / "models", repository, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".gitkeep"))
    _give_python_models_their_file(repository)
    findings, _, _ = check_repository(repository, RELEASE, run_models=bool(spec.get("run")))
    errors = [f"{f.model}: {f.message}" for f in findings if f.severity == ERROR]

    refused: dict[str, str] = {}
    server = judge.server
    start = len(server.log_text())
    for model in sorted(p.name for p in repository.iterdir() if p.is_dir()):
        try:
            server.load_model(model, timeout=30)
        except LoadUnanswered:  # no answer: the server died (or hangs) while loading it
            said = server.log_text()[start:]
            judge.restart()
            assert spec.get("crashes") and spec["crashes"] in said, f"the server died loading '{model}':\n{said}"
            refused[model] = said
            break
        except ServerError as err:
            refused[model] = err.problems[0].message.split("\n")[0] + "\n" + server.log_text()[start:]
    if spec.get("ask") and not refused:
        model = spec.get("model") or next(iter(sorted(p.name for p in repository.iterdir())))
        ended = _ask(server, repository / model, spec["ask"])
        if ended:
            judge.restart()
            refused[model] = ended

    if spec["verdict"] == "accept":
        assert not refused, refused
        assert not errors, errors
        return
    model = spec.get("model") or next(iter(sorted(p.name for p in repository.iterdir())))
    said = refused.get(model, "")
    assert spec["server"] in said or (spec.get("crashes") and spec["crashes"] in said), refused
    assert any(e.startswith(f"{model}: ") and spec["check"] in e for e in errors), errors


def _ask(server: TritonProcess, folder: Path, ask: dict[str, object]) -> str | None:
    """Send the case's request; what ended the server, if it did (None: it answers on)."""
    import numpy as np
    import tritonclient.http as http

    from compiler.server.supervisor import why_it_exited
    from compiler.triton_config import parse_text

    config = parse_text((folder / "config.pbtxt").read_text())
    client = http.InferenceServerClient(server.http_url, network_timeout=30)
    inputs = []
    for tensor in config.input:
        shape = ([1] if config.max_batch_size else []) + [max(1, int(d)) for d in tensor.dims]
        datatype = http_type(tensor.data_type)
        item = http.InferInput(tensor.name, shape, datatype)
        item.set_data_from_numpy(np.full(shape, b"a", dtype=object) if datatype == "BYTES" else
                                 np.zeros(shape, dtype=np.dtype(datatype.lower().replace("fp", "float"))))
        inputs.append(item)
    asked = http.InferRequestedOutput(str(ask["output"]), class_count=int(str(ask["class_count"])))
    try:
        client.infer(folder.name, inputs, outputs=[asked])
    except Exception:  # noqa: BLE001 - an error answer, or a connection the dying server closed
        pass
    deadline = time.monotonic() + 2  # a server that dies of the request has closed its sockets: it is reaped soon
    while server.running() and time.monotonic() < deadline:
        time.sleep(0.05)
    return None if server.running() else f"tritonserver exited: {why_it_exited(server.returncode)}"


def http_type(data_type: int) -> str:
    from tritonclient.grpc import model_config_pb2 as pb

    return pb.DataType.Name(data_type).removeprefix("TYPE_").replace("STRING", "BYTES")


#: The cases in shards, one class each: `make test` hands a class to one parallel worker (--dist loadscope), so the
#: shards are judged side by side, each by its worker's server, where one server judged them all in 5 minutes.
SHARDS = 3


@pytest.mark.parametrize("case", CASES[0::SHARDS], ids=lambda p: p.name)
class TestFirstShard:
    def test_check_and_the_server_agree(self, case: Path, judge: Judge) -> None:
        _judge(case, judge)


@pytest.mark.parametrize("case", CASES[1::SHARDS], ids=lambda p: p.name)
class TestSecondShard:
    def test_check_and_the_server_agree(self, case: Path, judge: Judge) -> None:
        _judge(case, judge)


@pytest.mark.parametrize("case", CASES[2::SHARDS], ids=lambda p: p.name)
class TestThirdShard:
    def test_check_and_the_server_agree(self, case: Path, judge: Judge) -> None:
        _judge(case, judge)

