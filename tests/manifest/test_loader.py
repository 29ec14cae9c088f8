"""The manifest loader: every negative case is a file in negative/ that names
the line and the words its error must have; add a file, get a test."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.errors import ManifestError
from compiler.manifest import load_manifest
from tests.helpers import expected_line, expected_phrases

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
NEGATIVE = sorted((HERE / "negative").glob("*.yaml"))


def _expectations(path: Path) -> tuple[int, list[str]]:
    text = path.read_text()
    return expected_line(text), expected_phrases(text)


def test_there_are_enough_negative_cases() -> None:
    assert len(NEGATIVE) >= 25


@pytest.mark.parametrize("case", NEGATIVE, ids=lambda p: p.stem)
def test_negative_manifest(case: Path) -> None:
    line, phrases = _expectations(case)
    with pytest.raises(ManifestError) as info:
        load_manifest(case)
    problems = info.value.problems
    at_line = [p for p in problems if p.line == line]
    assert at_line, f"no problem reported at line {line}: {[(p.line, p.message) for p in problems]}"
    rendered = info.value.render()
    for phrase in phrases:
        assert phrase in rendered
    assert all(p.file == case for p in problems)
    assert f"{case}:{line}" in rendered


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    manifest = tmp_path / "models.yaml"
    manifest.write_text(
        "models:\n"
        "  - name: a\n"
        "    source: {python: 'm:f'}\n"
        "    inputs: [{name: x, dtype: FP99, dims: [4]}]\n"
        "  - name: b/c\n"
        "    source: {python: 'm:f'}\n"
        "    inputs: [{name: x, dtype: FP32, dims: [0]}]\n"
        "    colour: blue\n"
    )
    with pytest.raises(ManifestError) as info:
        load_manifest(manifest)
    lines = sorted(p.line for p in info.value.problems if p.line)
    assert lines == [4, 5, 7, 8]
    models = {p.model for p in info.value.problems}
    assert models == {"a", "b/c"}


def test_committed_manifest_loads() -> None:
    loaded = load_manifest(ROOT / "models.yaml")
    names = [m.name for m in loaded.manifest.models]
    assert names == ["resnet", "bert", "sentiment"]
    bert = loaded.manifest.models[1]
    assert [i.name for i in bert.inputs] == ["input_ids", "attention_mask", "token_type_ids"]
    assert {i.dtype for i in bert.inputs} == {"TYPE_INT64"}


def test_api_dtype_names_are_normalised(tmp_path: Path) -> None:
    manifest = tmp_path / "models.yaml"
    manifest.write_text("models:\n  - name: a\n    source: {python: 'm:f'}\n    inputs: [{name: x, dtype: int64, dims: [4]}]\n")
    assert load_manifest(manifest).manifest.models[0].inputs[0].dtype == "TYPE_INT64"


def test_missing_manifest_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="manifest not found"):
        load_manifest(tmp_path / "nope.yaml")


def test_committed_json_schema_is_current() -> None:
    from compiler.manifest.jsonschema import manifest_schema

    assert (ROOT / "proto" / "models.schema.json").read_text() == manifest_schema(), "run `make schema`"


def test_committed_manifest_reference_is_current_and_every_field_is_described() -> None:
    """docs/manifest.md is generated from the field descriptions; a field without one is a hole in it."""
    from compiler.manifest.reference import manifest_reference, undescribed_fields
    from compiler.manifest.schema import Manifest

    assert undescribed_fields(Manifest.model_json_schema()) == []
    assert (ROOT / "docs" / "manifest.md").read_text() == manifest_reference(), "run `make schema`"


def test_json_schema_accepts_the_committed_manifest_and_rejects_a_typo() -> None:
    """What an editor does with the schema named on the manifest's first line."""
    import copy
    import json

    import jsonschema
    from ruamel.yaml import YAML

    schema = json.loads((ROOT / "proto" / "models.schema.json").read_text())
    manifest = YAML(typ="safe").load((ROOT / "models.yaml").read_text())
    jsonschema.validate(manifest, schema)
    typo = copy.deepcopy(manifest)
    typo["models"][0]["max_batch_sise"] = typo["models"][0].pop("max_batch_size")
    with pytest.raises(jsonschema.ValidationError, match="max_batch_sise"):
        jsonschema.validate(typo, schema)
