"""`compiler import` over every repository of tests/check/cases/ that tritonserver accepts: each model folder is
either imported or named with why it is not, never dropped in silence; and what is imported builds again, every field
the hand-written config sets kept (the build adds what tritonserver would complete: platform, version_policy)."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import json_format
from ruamel.yaml import YAML

from compiler.importer.repository import import_repository, manifest_text
from compiler.repository import layout
from compiler.triton_config import parse_text
from tests.helpers import run_cli

CASES = Path(__file__).parent.parent / "check" / "cases"
ACCEPTED = sorted(case for case in CASES.iterdir() if (case / "case.yaml").is_file()
                  and YAML(typ="safe").load((case / "case.yaml").read_text())["verdict"] == "accept")


def test_there_are_accepted_cases_with_and_without_pytorch_models() -> None:
    with_files = [case for case in ACCEPTED if any((case / "models").rglob("model.pt*"))]
    assert len(ACCEPTED) >= 30 and with_files and len(with_files) < len(ACCEPTED)


@pytest.mark.parametrize("case", ACCEPTED, ids=[case.name for case in ACCEPTED])
def test_every_model_is_imported_or_named_with_why(case: Path, tmp_path: Path) -> None:
    repository = case / "models"
    result = import_repository(repository, tmp_path)
    imported = {entry["name"] for entry in result.entries} | {pipeline["name"] for pipeline in result.pipelines}
    named = {line.split(":")[0].split("/")[0] for line in result.said if "left out" in line}
    assert {folder.name for folder in layout.model_folders(repository)} == imported | named, result.said
    assert not imported & named


PYTORCH_CASES = [case for case in ACCEPTED if any((case / "models").rglob("model.pt*"))]


@pytest.mark.slow
@pytest.mark.parametrize("case", PYTORCH_CASES, ids=[case.name for case in PYTORCH_CASES])
def test_an_imported_case_builds_again_keeping_every_field_it_set(case: Path, tmp_path: Path) -> None:
    repository = case / "models"
    manifest = tmp_path / "imported.yaml"
    manifest.write_text(manifest_text(import_repository(repository, tmp_path), repository))
    built = run_cli("build", "--manifest", str(manifest), "--output", str(tmp_path / "again"), "--allow-path",
                    str(repository))
    assert built.code == 0, built.out + built.err
    for folder in layout.model_folders(repository):
        original = json_format.MessageToDict(parse_text(layout.config_file(folder).read_text()),
                                             preserving_proto_field_name=True)
        again = json_format.MessageToDict(parse_text(layout.config_file(tmp_path / "again" / folder.name).read_text()),
                                          preserving_proto_field_name=True)
        assert {key: again.get(key) for key in original} == original
