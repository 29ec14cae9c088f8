"""All or nothing, atomic replacement, and rebuilding only what changed."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from compiler.manifest.schema import ModelSpec
from tests.helpers import Project, run_subprocess, tree_digest


def entry(name: str, batch: int = 2) -> str:
    return f"""
  - name: {name}
    source: {{python: "tiny_models:affine"}}
    max_batch_size: {batch}
    inputs: [{{name: x, dtype: FP32, dims: [4]}}]
"""


GOOD = "models:" + entry("good")

GOOD_AND_BAD = GOOD + """
  - name: bad
    source: {python: "tiny_models:baked_size"}
    max_batch_size: 2
    inputs: [{name: x, dtype: FP32, dims: [-1], example: {shape: [8]}}]
  - name: worse
    source: {python: "tiny_models:raises"}
    inputs: [{name: x, dtype: FP32, dims: [4]}]
"""


def test_a_failing_model_leaves_the_repository_byte_for_byte(project: Project) -> None:
    project.write(GOOD)
    assert project.build().code == 0
    before = tree_digest(project.output)
    project.write(GOOD_AND_BAD)
    result = project.build()
    assert result.code == 1
    assert "model 'bad'" in result.err and "model 'worse'" in result.err  # every failure, in one run
    assert tree_digest(project.output) == before
    leftovers = [p.name for p in project.root.iterdir() if ".staging-" in p.name]
    assert leftovers == []


def test_success_replaces_the_repository_and_drops_removed_models(project: Project) -> None:
    project.write(GOOD + entry("other"))
    assert project.build().code == 0
    assert sorted(p.name for p in project.output.iterdir()) == ["good", "other"]
    project.write(GOOD)
    assert project.build().code == 0
    assert sorted(p.name for p in project.output.iterdir()) == ["good"]
    assert oct(project.output.stat().st_mode & 0o777) == "0o755"


def test_only_changed_models_are_exported_again(project: Project) -> None:
    project.write(GOOD + entry("other"))
    assert project.build().code == 0
    project.write(GOOD + entry("other", batch=3))
    result = project.build()
    assert result.code == 0
    assert "good                 unchanged" in result.out
    assert "other                built" in result.out


def test_editing_the_model_code_triggers_a_rebuild(project: Project) -> None:
    project.write(GOOD)
    assert project.build().code == 0
    assert "unchanged" in project.build().out
    module = project.root / "tiny_models.py"
    module.write_text(module.read_text() + "\n# edited\n")
    assert "good                 built" in project.build().out


def test_noop_build_writes_nothing_and_never_imports_torch(project: Project) -> None:
    project.write(GOOD)
    assert project.build().code == 0
    before = tree_digest(project.output)
    probe = textwrap.dedent(f"""
        import sys
        from compiler.cli import main
        try:
            main(["build", "--manifest", {str(project.manifest)!r}, "--output", {str(project.output)!r}])
        except SystemExit as exit:
            assert not exit.code, exit.code
        assert "torch" not in sys.modules, "a no-op build imported torch"
        print("no torch")
    """)
    result = run_subprocess("-c", probe)
    assert result.code == 0, result.err
    assert "no torch" in result.out and "nothing written" in result.out
    assert tree_digest(project.output) == before


def test_output_is_deterministic(project: Project) -> None:
    """Byte for byte, but the one measured field: a derived queue policy's max_queue_size (the latency budget over
    the execution time the build measures; build.json records the measurement)."""
    import re

    def without_measured(text: bytes) -> bytes:
        return re.sub(rb"max_queue_size: \d+", b"max_queue_size: N", text)

    project.write(GOOD)
    assert project.build().code == 0
    first = (project.output / "good" / "config.pbtxt").read_bytes()
    assert b"max_queue_size: " in first
    assert project.build("--force").code == 0
    assert without_measured((project.output / "good" / "config.pbtxt").read_bytes()) == without_measured(first)


def test_build_record_keeps_binding_and_tolerances(project: Project) -> None:
    project.write(GOOD)
    assert project.build().code == 0
    record = json.loads((project.output / "good" / "build.json").read_text())
    assert record["binding"]["inputs"] == [["x", "x"]]
    assert record["tolerances"] == {"OUTPUT__0": [1e-4, 1e-4]}
    assert "batch" in record["proved"]


def test_the_record_names_the_manifest_and_release_that_built_it(project: Project) -> None:
    from compiler.repository.record import built_from
    from tests.helpers import run_cli

    project.built("""
        triton_version: "24.05"
        models:
          - name: m
            source: {python: "tiny_models:affine"}
            inputs: [{name: x, dtype: FP32, dims: [4]}]
    """)
    assert built_from(project.output) == (project.manifest.resolve(), "24.05")
    checked = run_cli("check", str(project.output), "--no-run")
    assert "target release 24.05 (the build record" in checked.out
    project.manifest.unlink()  # moved away: no manifest to name, the release still known
    assert built_from(project.output) == (None, "24.05")


def test_a_failed_build_keeps_the_models_that_exported_for_the_next_build(project: Project) -> None:
    good = """
        models:
          - name: good
            source: {python: "tiny_models:affine"}
            inputs: [{name: x, dtype: FP32, dims: [4]}]
          - name: other
            source: {python: "tiny_models:%s"}
            inputs: [{name: x, dtype: FP32, dims: [4]}]
    """
    project.write(good % "raises")
    failed = project.build()
    assert failed.code == 1 and not project.output.exists()  # the repository stays all or nothing
    kept = project.root / ".repo.kept" / "good"
    assert (kept / "1" / "model.pt").is_file()
    project.write(good % "affine")  # the other model fixed; `good` is unchanged
    fixed = project.build()
    assert fixed.code == 0, fixed.err
    assert "good: kept from the last (failed) build, same fingerprint" in fixed.err
    assert "other: built in" in fixed.err and "good: built in" not in fixed.err
    assert (project.output / "good" / "1" / "model.pt").is_file()
    assert not (project.root / ".repo.kept").exists()


def test_torchscript_for_a_release_that_serves_torch_export_is_said_once_per_build(project: Project) -> None:
    two = """
        triton_version: "%s"
        models:
          - name: a
            source: {python: "tiny_models:affine"}
            inputs: [{name: x, dtype: FP32, dims: [4]}]
          - name: b
            source: {python: "tiny_models:affine"}
            inputs: [{name: x, dtype: FP32, dims: [4]}]
    """
    project.write(two % "26.11")
    result = project.build()
    assert result.code == 0, result.err
    assert result.out.count("TorchScript is deprecated") == 1 and "`export: aoti` (platform torch_aoti)" in result.out
    project.write(two % "24.10")  # a release before torch_aoti: TorchScript is what it serves
    assert "TorchScript is deprecated" not in project.build().out


def test_an_internal_error_is_that_models_failure_and_the_others_are_kept(project: Project,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug (ours or a library's) while exporting one model: that model fails with its message, the user errors of
    the others are shown, and the models that did build are kept for the next build."""
    import compiler.export.exporter as exporter

    real = exporter.derive_outputs

    def derive(model: ModelSpec, runs: list) -> list:  # type: ignore[type-arg]
        if model.name == "broken":
            raise KeyError("a library bug")
        return real(model, runs)

    monkeypatch.setattr(exporter, "derive_outputs", derive)
    project.write("""
        models:
          - name: good
            source: {python: "tiny_models:affine"}
            inputs: [{name: x, dtype: FP32, dims: [4]}]
          - name: broken
            source: {python: "tiny_models:affine"}
            inputs: [{name: x, dtype: FP32, dims: [4]}]
          - name: bad
            source: {python: "tiny_models:raises"}
            inputs: [{name: x, dtype: FP32, dims: [4]}]
    """)
    result = project.build()
    assert result.code == 1, result.err  # a user-facing failure, not exit 3
    assert "model 'broken': internal error while exporting: KeyError: 'a library bug'" in result.err
    assert "model 'bad':" in result.err  # the other model's own error is shown too
    assert "KeyError" in (project.root / ".repo.logs" / "broken.log").read_text()
    assert (project.root / ".repo.kept" / "good" / "1" / "model.pt").is_file()


def test_an_unchanged_build_from_another_manifest_records_it_and_kept_models_show_their_tensors(
        project: Project) -> None:
    from compiler.repository.record import built_from

    text = """
        models:
          - name: m
            source: {python: "tiny_models:affine"}
            inputs: [{name: x, dtype: FP32, dims: [4]}]
    """
    project.built(text)
    other = project.root / "other.yaml"
    other.write_text(project.manifest.read_text())
    again = run_subprocess("-m", "compiler", "build", "--manifest", str(other), "--output", str(project.output))
    assert again.code == 0 and "m                    unchanged" in again.out
    assert "    input  x -> forward(x)" in again.out and "    output OUTPUT__0 TYPE_FP32 [3]" in again.out
    assert built_from(project.output)[0] == other.resolve()


def test_each_repository_has_its_own_profiling_files_and_removed_models_leave(project: Project) -> None:
    from compiler.profiling.writer import profiling_folder

    two = """
        models:
          - name: a
            source: {python: "tiny_models:affine"}
            inputs: [{name: x, dtype: FP32, dims: [4]}]
          - name: b
            source: {python: "tiny_models:affine"}
            inputs: [{name: x, dtype: FP32, dims: [4]}]
    """
    project.built(two)
    assert profiling_folder(project.output) == project.root / "repo.profiling"
    assert profiling_folder(project.root / "models") == project.root / "profiling"  # Triton/models: Triton/profiling
    assert sorted(p.name for p in profiling_folder(project.output).iterdir()) == ["a", "b"]
    project.built(two.split("          - name: b")[0])
    assert sorted(p.name for p in profiling_folder(project.output).iterdir()) == ["a"]


def test_the_code_fingerprint_covers_the_build_package_and_not_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Editing what exports a model re-exports it; editing the CLI or verify does not."""
    import shutil

    from compiler.repository import fingerprint

    copy = tmp_path / "compiler"
    shutil.copytree(Path(fingerprint.__file__).resolve().parent.parent, copy,
                    ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(fingerprint, "_COMPILER_ROOT", copy)
    before = fingerprint.compiler_code_hash()
    (copy / "cli.py").write_text((copy / "cli.py").read_text() + "\n# edited\n")
    (copy / "verify" / "runner.py").write_text((copy / "verify" / "runner.py").read_text() + "\n# edited\n")
    assert fingerprint.compiler_code_hash() == before
    (copy / "build" / "models.py").write_text((copy / "build" / "models.py").read_text() + "\n# edited\n")
    assert fingerprint.compiler_code_hash() != before
    # derived from what the build imports, not a list: cache.py (which the build reaches through its toolchain) and
    # the runtime files it copies count; a module only the CLI imports does not
    for edited in ("cache.py", "pipeline/runtime/steps.py"):
        before = fingerprint.compiler_code_hash()
        (copy / edited).write_text((copy / edited).read_text() + "\n# edited\n")
        assert fingerprint.compiler_code_hash() != before, edited
    before = fingerprint.compiler_code_hash()
    (copy / "bench" / "runner.py").write_text((copy / "bench" / "runner.py").read_text() + "\n# edited\n")
    assert fingerprint.compiler_code_hash() == before
