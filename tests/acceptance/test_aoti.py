"""export: aoti end to end: torch.export + AOTInductor packages, served by the real tritonserver (through our
backend: the embedded 24.10 server predates torch_aoti) and verified against eager PyTorch; the release rules;
check on the repository."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compiler.triton_config import parse_text
from tests.helpers import Project, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.tritonserver]

MANIFEST = """
triton_version: "26.11"
models:
  - name: heads
    source: {python: "tiny_models:heads"}
    export: aoti
    max_batch_size: 8
    inputs:
      - {name: "ARGS[0]", dtype: INT64, dims: [-1], example: {shape: [7], high: 50}}
      - {name: "ARGS[1]", dtype: BOOL, dims: [-1], example: {shape: [7]}}
    instance_group: [{kind: KIND_CPU}]
  - name: half
    source: {python: "tiny_models:half"}
    export: aoti
    inputs: [{name: "INPUT__0", dtype: FP16, dims: [4, -1], example: {shape: [4, 6]}}]
    instance_group: [{kind: KIND_CPU}]
"""


#: A CNN whose image height and width are free (a -1 each), as ResNet's.
CNN = """
triton_version: "26.11"
models:
  - name: cnn
    source: {python: "tiny_models:tiny_cnn"}
    export: aoti
    max_batch_size: 4
    inputs: [{name: INPUT__0, dtype: FP32, dims: [3, -1, -1], example: {shape: [3, 32, 32]}}]
    instance_group: [{kind: KIND_CPU}]
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return Project.at(tmp_path_factory.mktemp("aoti")).built(MANIFEST)


def test_packages_and_configs_follow_the_torch_aoti_platform(built: Project) -> None:
    config = parse_text((built.output / "heads" / "config.pbtxt").read_text())
    assert (config.platform, config.backend) == ("torch_aoti", "pytorch")
    assert (built.output / "heads" / "1" / "model.pt2").is_file()
    assert not (built.output / "heads" / "1" / "model.pt").exists()
    assert [i.name for i in config.input] == ["ARGS[0]", "ARGS[1]"]
    assert [(o.name, list(o.dims)) for o in config.output] == [("RESULT[logits]", [3]), ("RESULT[probs]", [3])]
    # batch invariance is proved on the package, but NVIDIA's backend answers merged requests wrong: a queue that
    # never merges (each request its own execution), for its queue policy
    assert list(config.dynamic_batching.preferred_batch_size) == [1]
    assert config.dynamic_batching.max_queue_delay_microseconds == 0
    half = parse_text((built.output / "half" / "config.pbtxt").read_text())
    assert [(o.name, o.data_type, list(o.dims)) for o in half.output] == [("RESULT", half.output[0].data_type, [4, -1])]
    record = json.loads((built.output / "heads" / "build.json").read_text())
    assert "dims ARGS[0] dim 0, ARGS[1] dim 0" in record["proved"]
    assert record["optimized"] == "inductor freezing"  # optimize: true, the default


def test_the_packages_serve_and_equal_eager_pytorch(built: Project) -> None:
    result = run_cli("verify", "--repository", str(built.output))
    assert result.code == 0, result.out
    assert "platform torch_aoti loaded through backend pytorch_aoti" in result.out
    rows = [line for line in result.out.splitlines() if line.startswith(("heads", "half"))]
    assert len([r for r in rows if " grpc " in r and " ok " in r]) >= 8


def test_check_applies_the_release_rules_to_the_repository(built: Project) -> None:
    clean = json.loads(run_cli("check", str(built.output), "--no-run", "--format", "json").out)
    assert clean["errors"] == 0, clean
    old = json.loads(run_cli("check", str(built.output), "--no-run", "--format", "json",
                             "--triton-version", "26.04").out)
    messages = [f["message"] for f in old["findings"] if f["severity"] == "error"]
    assert any("pytorch_backend r26.04: a package loads only when its config has exactly two inputs" in m
               and "this model has 1" in m for m in messages)  # half; heads has two
    assert any("'RESULT[logits]': names that follow forward()" in m for m in messages)


def test_before_26_05_outputs_are_named_by_position(project: Project) -> None:
    """26.04: names by position, and two inputs exactly (AOTI-INPUT-COUNT); served by pytorch_backend r26.04."""
    project.built(MANIFEST.replace('"26.11"', '"26.04"').replace('"ARGS[0]"', "INPUT__0").replace('"ARGS[1]"', "INPUT__1")
                  .split("  - name: half")[0])
    heads = parse_text((project.output / "heads" / "config.pbtxt").read_text())
    assert [o.name for o in heads.output] == ["OUTPUT__0", "OUTPUT__1"]
    result = run_cli("verify", "--repository", str(project.output))
    assert result.code == 0, result.out
    assert "NVIDIA pytorch_backend r26.04" in result.out


def test_a_cpu_package_is_refused_for_gpu_instances_before_compiling(project: Project) -> None:
    project.write(MANIFEST.replace("instance_group: [{kind: KIND_CPU}]\n  - name: half",
                                   "instance_group: [{kind: KIND_GPU}]\n  - name: half"))
    result = project.build()
    assert result.code == 1
    assert "the AOTInductor package was compiled for the CPU" in result.err and "KIND_GPU" in result.err
    assert "heads: AOTInductor compile" not in result.err  # refused before the compile; `half` still compiles


def test_a_target_torch_pip_cannot_install_is_refused_naming_it(project: Project) -> None:
    project.write(MANIFEST.replace('triton_version: "26.11"\n', 'triton_version: "26.11"\ntarget_torch: "2.99"\n'))
    result = project.build()
    assert result.code == 1
    line = project.manifest.read_text().splitlines().index('target_torch: "2.99"') + 1
    assert f"{project.manifest}:{line}:1: target_torch: the target ships PyTorch 2.99" in result.err
    assert "pip could not install torch==2.99.* here" in result.err
    assert "AOTInductor compile" not in result.err


def test_a_target_that_ships_another_torch_is_compiled_by_that_torch(project: Project) -> None:
    """torch 2.13 (a CPU wheel this machine's index has) in a toolchain venv, made once and cached by version."""
    project.write(CNN.replace('triton_version: "26.11"', 'triton_version: "26.11"\ntarget_torch: "2.13"'))
    result = project.build()
    assert result.code == 0, result.err
    assert "building in the torch 2.13 toolchain" in result.err
    assert "cnn: prove: batch invariance" in result.err  # the whole proof ran there, on the 2.13 package
    record = json.loads((project.output / "cnn" / "build.json").read_text())
    assert record["torch_version"].startswith("2.13.")
    assert "which PyTorch Triton 26.11's image ships" not in result.out  # the manifest said it
    again = project.build()
    assert again.code == 0 and "unchanged, nothing written" in again.out and "toolchain" not in again.err


def test_an_unknown_target_torch_is_said_once_per_build(built: Project) -> None:
    again = run_cli("build", "--manifest", str(built.manifest), "--output", str(built.output))
    assert again.code == 0
    assert again.out.count("not proved for 26.11: its PyTorch version is not known") == 1


def test_a_dim_the_model_bounds_is_taken_from_torch_export_and_said(project: Project) -> None:
    project.built("""
        triton_version: "26.11"
        models:
          - name: positional
            source: {python: "tiny_models:positional"}
            export: aoti
            max_batch_size: 4
            inputs: [{name: INPUT__0, dtype: INT64, dims: [-1], example: {shape: [6], high: 20}}]
            instance_group: [{kind: KIND_CPU}]
    """)
    again = run_cli("build", "--manifest", str(project.manifest), "--output", str(project.output), "--force")
    assert "the variable dims are bounded: INPUT__0 dim 0 takes at most 8" in again.out


def test_check_holds_a_config_to_its_package(built: Project, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "models"
    shutil.copytree(built.output, copy)
    clean = json.loads(run_cli("check", str(copy), "--format", "json").out)
    assert clean["errors"] == 0, clean
    assert any("package call spec: ARGS[0], ARGS[1] -> RESULT[logits], RESULT[probs]" in f["message"]
               for f in clean["findings"])
    config = copy / "heads" / "config.pbtxt"
    config.write_text(config.read_text().replace('"RESULT[probs]"', '"RESULT[prob]"'))
    broken = json.loads(run_cli("check", str(copy), "--format", "json").out)
    errors = [f for f in broken["findings"] if f["severity"] == "error"]
    assert [f["message"].split(";")[0] for f in errors] == ["output 'RESULT[prob]' is not a name of this package"]
    assert errors[0]["line"] == config.read_text().splitlines().index('  name: "RESULT[prob]"') + 1


def test_a_no_op_build_of_packages_imports_no_torch(built: Project) -> None:
    from tests.helpers import run_subprocess

    probe = ("import sys; from compiler.cli import main\n"
             f"sys.argv = ['compiler', 'build', '--manifest', {str(built.manifest)!r}, '--output', "
             f"{str(built.output)!r}]\n"
             "try:\n    main()\nexcept SystemExit:\n    pass\nassert 'torch' not in sys.modules, 'torch imported'\n")
    result = run_subprocess("-c", probe)
    assert result.code == 0, result.err
    assert "unchanged, nothing written" in result.out


def test_the_backend_opens_a_package_without_importing_inductor(built: Project) -> None:
    """Every model instance is a stub that opens its package: through torch._inductor it spent twice the CPU
    starting. The backend's loader gives the call spec aoti_load_package gives, and leaves torch._inductor
    unimported."""
    from tests.helpers import run_subprocess

    package = built.output / "heads" / "1" / "model.pt2"
    probe = ("import sys\n"
             "from compiler.backend.pytorch.pt2_names import load_package\n"
             f"print(load_package({str(package)!r}).get_call_spec())\n"
             "print('torch._inductor' in sys.modules)\n")
    result = run_subprocess("-c", probe)
    assert result.code == 0, result.err
    spec, inductor = result.out.strip().splitlines()[-2:]
    assert inductor == "False"
    import torch

    assert spec == str(torch._inductor.aoti_load_package(str(package)).loader.get_call_spec())


def test_dims_torch_export_finds_free_are_proved_apart(project: Project) -> None:
    """An image's height and width share an example size but not a value: a package exported with them as one
    size returned wrong answers (off by 1.1 on ResNet-50) for 176x200 images, and a proof that varied them
    together could not see it."""
    import torch

    from compiler.manifest import load_manifest
    from compiler.sources import load_source

    project.built(CNN)
    record = json.loads((project.output / "cnn" / "build.json").read_text())
    assert {"dims INPUT__0 dim 1", "dims INPUT__0 dim 2"} <= set(record["proved"])
    package = torch._inductor.aoti_load_package(str(project.output / "cnn" / "1" / "model.pt2"))
    loaded = load_manifest(project.manifest)
    model = load_source(loaded.manifest.models[0], loaded.directory).eval()  # the weights the build seeded
    x = torch.rand(2, 3, 24, 40)
    with torch.no_grad():
        torch.testing.assert_close(package(x), model(x), atol=1e-5, rtol=1e-4)
