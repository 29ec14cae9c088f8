"""Pipelines end to end: raw texts and image bytes in, answers out, built, proved, served as Triton ensembles in the
real tritonserver, verified, checked and queried with `infer`; labels through Triton's classification extension;
warmup; and a pipeline whose labels do not fit its classifier, refused at its line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from compiler.bench.stats import settled
from compiler.pipeline.encoder import GROUP_SLACK
from compiler.server.session import embedded_server
from compiler.triton_config import parse_text
from tests.helpers import FIXTURES, Project, run_cli, tree_digest

pytestmark = [pytest.mark.slow, pytest.mark.tritonserver]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, str]:
    project = Project.at(tmp_path_factory.mktemp("pipelines"))
    for item in (FIXTURES / "pipeline").iterdir():
        shutil.copy(item, project.root / item.name)
    sys.path.insert(0, str(FIXTURES))
    try:
        from tiny_models import save_tiny_text_classifier, save_tiny_text_encoder

        save_tiny_text_encoder(str(project.root / "encoder"))
        save_tiny_text_classifier(str(project.root / "classifier"))
    finally:
        sys.path.remove(str(FIXTURES))
    Image.new("RGB", (50, 70), (200, 40, 40)).save(project.root / "picture.png")
    result = project.build()
    assert result.code == 0, result.err
    return project, result.out + result.err


def test_each_pipeline_is_an_ensemble_of_its_steps_with_their_files(built: tuple[Project, str]) -> None:
    project, said = built
    repo = project.output
    config = parse_text((repo / "embed" / "config.pbtxt").read_text())
    assert config.platform == "ensemble" and config.max_batch_size == 8
    assert [s.model_name for s in config.ensemble_scheduling.step] == ["embed_tokenize", "embed_encoder"]
    written = parse_text((repo / "embed_steps" / "config.pbtxt").read_text())  # fuse: false
    assert [s.model_name for s in written.ensemble_scheduling.step] == ["embed_steps_tokenize", "encoder",
                                                                        "embed_steps_pool"]
    encoder = parse_text((repo / "embed_encoder" / "config.pbtxt").read_text())
    assert encoder.platform == "pytorch_libtorch" and all(i.allow_ragged_batch for i in encoder.input)
    assert [(b.target_name, b.source_input) for b in encoder.batch_input] == [(["lengths"], ["input_ids"])]
    assert [(o.name, list(o.dims)) for o in encoder.output] == [("EMBEDDING", [32])]
    assert encoder.HasField("dynamic_batching") and (repo / "embed_encoder" / "1" / "encoder.py").is_file()
    # its texts run in groups of near length (tests/pipeline/test_encoder.py shows what that does)
    assert json.loads((repo / "embed_encoder" / "1" / "encoder.json").read_text())["grouped"] == GROUP_SLACK
    assert "embed: prove: 5 requests merged into one execution of each step, against each alone" in said
    # a sequence classifier fused alike: ragged ids in, its logits out, read by the classify step
    mood = parse_text((repo / "mood" / "config.pbtxt").read_text())
    assert [s.model_name for s in mood.ensemble_scheduling.step] == ["mood_tokenize", "mood_encoder", "mood_classify"]
    classifier = parse_text((repo / "mood_encoder" / "config.pbtxt").read_text())
    assert all(i.allow_ragged_batch for i in classifier.input)
    assert [(o.name, list(o.dims)) for o in classifier.output] == [("logits__0", [3])]
    assert "mood: prove: 5 requests merged into one execution of each step, against each alone" in said
    assert "'classifier' fused with the tokenizer's padding, merging" in said  # no pool step in this one
    assert "initialised at random" not in said  # the fixture's classifier folder has its head
    assert (repo / "embed_tokenize" / "1" / "tokenizer" / "tokenizer.json").is_file()
    assert (repo / "colours_classify" / "1" / "labels.txt").read_text().splitlines() == ["red", "green", "blue",
                                                                                           "white"]
    assert {p.name for p in (repo / "features_python" / "1").iterdir()} >= {"user_steps.py", "user_helpers.py",
                                                                            "model.py", "steps.py", "step.json"}
    tokenize = parse_text((repo / "embed_tokenize" / "config.pbtxt").read_text())
    assert [w.batch_size for w in tokenize.model_warmup] == [1, 8]
    assert tokenize.model_warmup[0].inputs["TEXT"].input_data_file == "TEXT"
    assert parse_text((repo / "encoder" / "config.pbtxt").read_text()).model_warmup[0].inputs[
        "input_ids"].zero_data
    assert parse_text((repo / "cnn" / "config.pbtxt").read_text()).output[0].label_filename == "labels_RESULT.txt"
    assert "embed: prove: 4 inputs in one batch, against each alone" in said  # texts of 1 to 29 words
    assert "colours: prove: input 6 (a PNG" in said  # 6 made (3 sizes, JPEG and PNG) + its own picture.png
    assert "colours: prove: 4 inputs in one batch" in said  # at most max_batch_size
    checked = json.loads(run_cli("check", str(repo), "--format", "json").out)
    assert checked["errors"] == 0 and checked["warnings"] == 0, checked


def test_a_build_again_leaves_the_pipelines_unchanged_and_shows_them(built: tuple[Project, str]) -> None:
    """The second `make repo` of a manifest with pipelines: nothing written, each pipeline shown from its record."""
    project, _ = built
    again = project.build()
    assert again.code == 0, again.out + again.err
    assert "unchanged, nothing written" in again.out
    lines = again.out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("embed ") and "unchanged" in line)
    assert lines[at + 1:at + 4] == ["    input  TEXT TYPE_STRING [1]", "    output EMBEDDING TYPE_FP32 [32]",
                                    "    steps  tokenize(embed_tokenize) -> encoder(embed_encoder)"]
    at = next(i for i, line in enumerate(lines) if line.startswith("embed_steps ") and "unchanged" in line)
    assert lines[at + 3] == "    steps  tokenize(embed_steps_tokenize) -> encoder -> pool(embed_steps_pool)"


def test_verify_sends_raw_inputs_over_http_and_grpc(built: tuple[Project, str]) -> None:
    project, _ = built
    result = run_cli("verify", "--repository", str(project.output))
    assert result.code == 0, result.out + result.err  # err: the stub watch says a death and its reload
    rows = [line for line in result.out.splitlines() if "raw inputs, alone and in a batch" in line]
    assert len(rows) == 12 and all(" ok " in row for row in rows)  # six pipelines, over HTTP and gRPC
    hostile = [line for line in result.out.splitlines() if "hostile raw inputs" in line]
    assert len(hostile) == 12 and all(" ok " in row for row in hostile)
    assert sum("a 20000x20000 PNG bomb" in row and "a 10000x1 strip" in row for row in hostile) == 4  # colours*
    assert sum("a text over max_bytes (65536)" in row for row in hostile) == 6  # embed, embed_steps, mood
    assert sum("none to send to a python step" in row for row in hostile) == 2  # features
    classified = [line for line in result.out.splitlines() if "class_count on every output" in line]
    assert all(" ok " in row for row in classified)  # the models' rows too
    pipelines = [row for row in classified
                 if row.split()[0] in ("colours", "colours_named", "embed", "embed_steps", "features", "mood")]
    assert len(pipelines) == 12
    concurrent = {line.split()[0]: line for line in result.out.splitlines() if "16 concurrent requests" in line}
    assert set(concurrent) == {"colours", "colours_named", "embed", "embed_steps", "features", "mood"}
    assert all(" ok " in row for row in concurrent.values())
    assert "executions of embed_encoder" in concurrent["embed"] and "executions of encoder" in concurrent["embed_steps"]
    assert "executions of mood_encoder" in concurrent["mood"]
    # the PROBABILITIES of colours and of mood (a text classifier's) are labelled: Triton's class_count names them
    assert sum("the labelled top class as in-process" in row for row in classified) == 4


def test_the_encoder_merges_requests_of_any_length_into_one_execution(built: tuple[Project, str]) -> None:
    """Ragged batching's witness: requests of 16 different lengths sent at once to the fused encoder run in fewer
    executions than requests (Triton's statistics), each answered as it is alone. The fixture's 50 ms queue delay
    lets them meet; without allow_ragged_batch the dynamic batcher merges only requests of one shape, so each of
    these would still run alone."""
    import numpy as np
    import tritonclient.http as http

    project, _ = built

    def request(length: int) -> list[http.InferInput]:
        arrays = {"input_ids": 1000 + np.arange(length, dtype=np.int64)[None], "attention_mask": np.ones((1, length),
                                                                                                         np.int64)}
        items = []
        for name, array in arrays.items():
            item = http.InferInput(name, list(array.shape), "INT64")
            item.set_data_from_numpy(array)
            items.append(item)
        return items

    lengths = range(3, 19)
    with embedded_server(project.output) as (server, _):
        client = http.InferenceServerClient(server.http_url, concurrency=len(lengths), network_timeout=120)
        alone = [client.infer("embed_encoder", request(n)).as_numpy("EMBEDDING") for n in lengths]
        for _ in range(3):  # a burst can happen to run one by one; three in a row cannot, where merging works
            before = settled(server.http_url, ["embed_encoder"])["embed_encoder"]
            handles = [client.async_infer("embed_encoder", request(n)) for n in lengths]
            answers = [handle.get_result().as_numpy("EMBEDDING") for handle in handles]
            after = settled(server.http_url, ["embed_encoder"],
                            {"embed_encoder": before.requests + len(lengths)})["embed_encoder"]
            for want, got in zip(alone, answers):
                np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
            spent = after - before
            executions, requests = spent.executions, spent.inferences
            if executions < requests:
                break
    assert requests == len(lengths) and executions < requests, f"{requests} requests in {executions} executions"


def test_infer_sends_raw_text_and_image_and_asks_for_classes(built: tuple[Project, str]) -> None:
    project, _ = built
    with embedded_server(project.output) as (server, _):
        url = server.http_url
        text = run_cli("infer", "embed", "--text", "Triton serves raw text.", "--url", url,
                       "--repository", str(project.output))
        assert text.code == 0, text.err
        assert "EMBEDDING: float32 [1, 32]" in text.out
        image = run_cli("infer", "colours", "--image", str(project.root / "picture.png"), "--url", url,
                        "--protocol", "http", "--repository", str(project.output))
        assert image.code == 0, image.err
        assert "PROBABILITIES: float32 [1, 4]" in image.out and "TOP_SCORES: float32 [1, 2]" in image.out
        assert "COLOURS: int64 [1, 2]" in image.out  # the top classes' indices: no TYPE_STRING output
        # the pipeline's labelled output, classified by Triton itself (ensemble_image_client.py asks so)
        named = run_cli("infer", "colours", "--image", str(project.root / "picture.png"), "--classes", "2",
                        "--url", url, "--repository", str(project.output))
        assert named.code == 0, named.err
        line = next(line for line in named.out.splitlines() if line.startswith("PROBABILITIES: "))
        score, index, label = line.removeprefix("PROBABILITIES: ").split(", ")[0].split(":")
        assert 0 < float(score) <= 1 and int(index) in range(4) and label == ["red", "green", "blue", "white"][int(index)]
        classes = run_cli("infer", "cnn", "--classes", "2", "--url", url, "--repository", str(project.output))
        assert classes.code == 0, classes.err
        line = next(line for line in classes.out.splitlines() if line.startswith("RESULT: "))
        first = line.removeprefix("RESULT: ").split(", ")[0]
        score, index, label = first.split(":")
        assert float(score) and int(index) in range(4) and label in {"red", "green", "blue", "white"}


CLIENTS = FIXTURES / "triton_client"  # Triton's own example clients, unmodified (their SOURCE.md)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_tritons_own_image_clients_classify_a_model_and_a_pipeline_unmodified(built: tuple[Project, str],
                                                                                protocol: str) -> None:
    """image_client.py reads the model's one input, its FORMAT_NCHW and fixed dims, lays the image out so and asks
    for the top classes; ensemble_image_client.py sends the pipeline the image's bytes and asks class_count of every
    output. Both are run as their users run them, as scripts."""
    project, _ = built
    picture = str(project.root / "picture.png")
    colours = ["red", "green", "blue", "white"]
    with embedded_server(project.output) as (server, _):
        url = server.http_url if protocol == "http" else server.grpc_url
        model = subprocess.run([sys.executable, str(CLIENTS / "image_client.py"), "-m", "cnn", "-c", "2", "-s",
                                "NONE", "-u", url, "-i", protocol, picture], capture_output=True, text=True,
                               timeout=120)
        assert model.returncode == 0 and model.stdout.rstrip().endswith("PASS"), model.stdout + model.stderr
        # "    <score> (<index>) = <label>", the classification extension's score:index:label
        said = [line.strip() for line in model.stdout.splitlines() if line.startswith("    ")]
        assert len(said) == 2 and all(line.split(" = ")[1] == colours[int(line.split("(")[1].split(")")[0])]
                                      for line in said), model.stdout
        # it asks class_count of every output and prints score (index) = label: a pipeline whose outputs all carry
        # labels (colours' SCORES has none): the image step and the model, whose RESULT has colours.txt
        pipeline = subprocess.run([sys.executable, str(CLIENTS / "ensemble_image_client.py"), "-m", "colours_named",
                                   "-c", "2", "-u", url, "-i", protocol, picture], capture_output=True, text=True,
                                  timeout=120)
        assert pipeline.returncode == 0, pipeline.stdout + pipeline.stderr
        assert "[RESULT]:" in pipeline.stdout, pipeline.stdout
        labelled = [line for line in pipeline.stdout.split("[RESULT]:")[1].splitlines() if " = " in line]
        assert len(labelled) == 2 and all(line.strip().split(" = ")[1] in colours for line in labelled), labelled


def _configs(root: Path) -> dict[Path, str]:
    return {path.relative_to(root): path.read_text() for path in root.rglob("*.pbtxt")}


def test_import_builds_the_models_and_pipelines_again_with_identical_configs(built: tuple[Project, str],
                                                                              tmp_path: Path) -> None:
    """build -> import -> build: TorchScript models and packages from their own files, pipelines from the entries
    their records keep (labels and the tokenizer from the repository's copies, a python: step's modules copied beside
    the new manifest); the new manifest in a folder of its own, the repository outside it (--allow-path)."""
    project, _ = built
    manifest = tmp_path / "imported" / "models.yaml"
    manifest.parent.mkdir()
    result = run_cli("import", str(project.output), "--output", str(manifest))
    assert result.code == 0, result.out + result.err
    assert "features: copied user_helpers.py, user_steps.py beside the manifest" in result.out
    assert "4 models and 6 pipelines imported" in result.out and f"--allow-path {project.output}" in result.out
    assert (manifest.parent / "user_steps.py").read_text() == (project.root / "user_steps.py").read_text()
    again = run_cli("build", "--manifest", str(manifest), "--output", str(tmp_path / "again"), "--allow-path",
                    str(project.output))
    assert again.code == 0, again.out + again.err
    assert _configs(tmp_path / "again") == _configs(project.output)


def test_labels_that_do_not_fit_the_classifier_are_refused_at_their_line(built: tuple[Project, str],
                                                                          tmp_path: Path) -> None:
    project, _ = built
    (project.root / "three.txt").write_text("red\ngreen\nblue\n")
    manifest = project.manifest.read_text().replace("classify: {labels: colours.txt", "classify: {labels: three.txt")
    broken = project.root / "broken.yaml"
    broken.write_text(manifest)
    before = tree_digest(project.output)
    # into the built repository: its unchanged models are not exported again, and the failed build leaves it whole
    result = run_cli("build", "--manifest", str(broken), "--output", str(project.output))
    assert result.code == 1
    assert tree_digest(project.output) == before
    line = next(n for n, text in enumerate(manifest.splitlines(), 1) if "three.txt" in text)
    assert f"broken.yaml:{line}" in result.err
    assert "three.txt has 3 lines, the classifier gives 4 classes" in result.err


def test_bench_measures_pipelines_against_their_steps_in_process_and_the_first_request(
        built: tuple[Project, str], tmp_path: Path) -> None:
    """perf_analyzer sends raw texts and image bytes (its input file written by the bench); the in-process rows run
    the same steps around eager; Triton's statistics say where each step's time went; warmup's rows load each
    pipeline again without and with model_warmup."""
    from compiler.bench import run_bench, write_report

    project, _ = built
    results = run_bench(project.manifest, project.output, ["colours", "features"], seconds=0.3, rounds=1,
                        with_pytriton=False, with_build=False, with_torchscript=False, with_profile=False,
                        with_tuning=False)
    assert results.models == []
    colours, features = results.pipelines
    assert colours.steps == ["colours_image", "cnn", "colours_classify"] and colours.batch == 4
    assert colours.in_process is not None and colours.in_process.samples_per_request == 4
    assert [m.label for m in colours.served] == ["served http c1", "served http c16", "served grpc c1",
                                                 "served grpc c16"]
    for row in colours.served + features.served:
        assert row.throughput > 0
    c16 = colours.served[1].stats
    assert c16["colours"].requests > 0 and c16["cnn"].executions > 0 and c16["cnn"].busy_ns > 0
    # the batches the server formed, as its statistics count them (whether 16 clients on a busy 2-core machine kept
    # two images queued at once is the machine's business: a beside-a-CPU-hog run formed none)
    image = c16["colours_image"]
    assert sum(image.batches.values()) == image.executions and sum(k * v for k, v in image.batches.items()) == \
        image.inferences == image.requests
    assert set(c16["cnn"].batches) == {1}  # a package is never merged (AOTI-MERGE): each request runs alone
    # where the machine's cores went in each served row, by process: the server, the image step's stub, the client
    for row in colours.served:
        assert row.cpu is not None and row.cpu.wall_s > 0
        assert min(row.cpu.seconds.get(name, 0.0) for name in ("tritonserver", "colours_image (Python stub)",
                                                      "perf_analyzer")) > 0
    assert [(r.name, r.warm) for r in results.first_requests] == [("colours", False), ("colours", True),
                                                                   ("features", False), ("features", True)]
    assert all(r.first_ms > 0 and r.steady_ms > 0 for r in results.first_requests)
    text = write_report(results, tmp_path / "docs")[0].read_text()
    assert "## Pipeline colours" in text and "| served grpc c16 / in-process batch 4 |" in text
    assert "share per step" in text and "## The first request after READY" in text
    assert ("| row | tritonserver | colours_image (Python stub) | colours_classify (Python stub) | perf_analyzer | "
            "the rest | idle |") in text


def test_bench_measures_text_pipelines_beside_the_libraries_and_infinity_on_the_same_texts(
        built: tuple[Project, str], tmp_path: Path) -> None:
    """The anchor rows, for an embedding and a classifier: the library in its own cached venv (sentence-transformers
    encode(); transformers' text-classification pipeline), and infinity-emb from it serving the same folder
    (/embeddings; /classify) to 16 client threads over HTTP, on the same 512 texts of 4 to 60 words as the served
    rows; their answers are the pipeline's (the same model, pooled and normalised alike; the same classes'
    probabilities), so the ratios compare like with like."""
    from compiler.bench import run_bench, write_report
    from compiler.bench.anchors import TASK_CLASSIFY, TASK_EMBED
    from compiler.bench.pipelines import BENCH_TEXTS

    project, _ = built
    results = run_bench(project.manifest, project.output, ["embed", "mood"], seconds=0.3, rounds=1,
                        with_pytriton=False, with_build=False, with_torchscript=False, with_profile=False,
                        with_tuning=False, with_warmup=False)
    embed, mood = results.pipelines
    assert (embed.anchor_task, mood.anchor_task) == (TASK_EMBED, TASK_CLASSIFY)
    assert mood.steps == ["mood_tokenize", "mood_encoder", "mood_classify"]
    for bench in (mood,):
        assert not bench.anchor_error and bench.anchor is not None and bench.anchor.throughput > 0
        assert bench.anchor_difference is not None and bench.anchor_difference < 1e-4, bench.anchor_difference
        assert not bench.infinity_error and bench.infinity is not None and bench.infinity.throughput > 0
        assert bench.infinity_difference is not None and bench.infinity_difference < 1e-4, bench.infinity_difference
    assert embed.steps == ["embed_tokenize", "embed_encoder"]
    assert not embed.anchor_error and embed.anchor is not None
    assert embed.anchor.samples_per_request == BENCH_TEXTS and embed.anchor.throughput > 0
    assert embed.anchor_difference is not None and embed.anchor_difference < 1e-4, embed.anchor_difference
    assert not embed.infinity_error and embed.infinity is not None
    assert embed.infinity.concurrency == 16 and len(embed.infinity.latencies_ms) > 0 and embed.infinity.throughput > 0
    assert embed.infinity_difference is not None and embed.infinity_difference < 1e-4, embed.infinity_difference
    text = write_report(results, tmp_path / "docs")[0].read_text()
    assert "| served grpc c16 / sentence-transformers encode, batch 8 |" in text
    assert "| served http c16 / infinity-emb http c16, batch 8 |" in text
    assert "sentence-transformers==3.4.1" in text and "infinity-emb[server,torch]==0.0.78" in text
    assert "| served grpc c16 / transformers text-classification, batch 8 |" in text
    assert "serving the same folder with its torch engine on the CPU (/classify)" in text
