"""The rule book (compiler/rulebook.py) is the one place a rule's code is defined: every code the compiler emits is
in it, every rule in it is emitted somewhere, its release ranges are the releases' own constants, docs/check.md's
rule list is written from it, and --select/--ignore choose findings by it as ruff does."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from compiler import releases
from compiler.check import check_repository
from compiler.compat.aoti_rules import aoti_violations
from compiler.compat.torchscript_rules import torchscript_violations
from compiler.releases import Release
from compiler.rulebook import FAMILIES, FEATURE_CODES, RULES, chosen, unknown, with_rule_list
from tests.helpers import ROOT, run_cli

PACKAGE = ROOT / "compiler"
#: A code as the compiler writes one where it emits a finding or a problem.
CODE = re.compile(r"""["']([MLCERTA]\d{3})["']""")


def _emitted() -> dict[str, list[str]]:
    """Code -> the modules that write it (the rule book itself aside)."""
    found: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "rulebook.py":
            continue
        for code in CODE.findall(path.read_text()):
            found.setdefault(code, []).append(str(path.relative_to(ROOT)))
    for feature, code in FEATURE_CODES.items():  # check/rules.py emits these by feature
        found.setdefault(code, []).append(f"rulebook.FEATURE_CODES[{feature!r}]")
    return found


def test_every_code_the_compiler_emits_is_in_the_rule_book() -> None:
    stray = {code: where for code, where in _emitted().items() if code not in RULES}
    assert not stray, f"codes with no rule: {stray}"


def test_every_rule_is_emitted_somewhere() -> None:
    dead = sorted(set(RULES) - set(_emitted()))
    assert not dead, f"rules nothing emits: {dead}"


def test_each_rule_is_complete_and_in_a_family() -> None:
    for rule in RULES.values():
        assert rule.code[0] in FAMILIES and re.fullmatch(r"[A-Z]\d{3}", rule.code)
        assert rule.what and rule.source and rule.fix and rule.severity in ("error", "warning", "info"), rule
        assert re.fullmatch(r"[a-z0-9.-]+", rule.name), rule
    names = [r.name for r in RULES.values()]
    assert len(names) == len(set(names))


def test_release_ranges_are_the_releases_own_facts() -> None:
    assert RULES["T102"].before == releases.FORWARD_ARGUMENT_NAMES_SINCE
    assert RULES["A101"].before == releases.AOTI_SINCE
    assert RULES["R120"].before == releases.MODEL_CONFIG_NAME_SINCE
    for feature, code in FEATURE_CODES.items():
        assert RULES[code].before == releases.CONFIG_FEATURES[feature]
    assert RULES["A103"].applies(Release.parse("26.04")) and not RULES["A103"].applies(Release.parse("26.05"))
    assert not RULES["A103"].applies(Release.parse("26.02")) and RULES["A103"].releases() == "26.03 to before 26.05"
    assert RULES["R130"].applies(Release.parse("24.10")) and not RULES["R130"].applies(Release.parse("25.07"))


@pytest.mark.parametrize("release", ["22.02", "24.10", "26.03", "26.04", "26.05"])
def test_the_shared_release_rules_find_only_rules_that_apply_to_their_release(release: str) -> None:
    """The rules validate and check share (compat/): each violation names a rule, and that rule applies to the
    release it was found for."""
    target = Release.parse(release)
    found = torchscript_violations(target, [("x", "BF16"), ("y", "INT64")], [("z", "FP32")])
    found += aoti_violations(target, 8, [("x", "BF16"), ("KWARGS[y]", "BYTES"), ("w", "FP32")], [("RESULT", "FP32")],
                             dynamic_batching=True)
    assert found
    for v in found:
        assert RULES[v.code].applies(target), (release, v)


def test_docs_rule_list_is_written_from_the_rule_book() -> None:
    text = (ROOT / "docs" / "check.md").read_text()
    assert text == with_rule_list(text), "run `make schema`"
    assert all(f"`{code}`" in text for code in RULES)


@pytest.mark.parametrize(("select", "ignore", "code", "shown"), [
    ((), (), "C110", True),
    (("C",), (), "C110", True),
    (("C",), (), "L001", False),
    (("C1",), ("C110",), "C110", False),
    (("C110",), ("C1",), "C110", True),  # the longer selector wins
    (("C110",), ("C1",), "C120", False),
    ((), ("L",), "L001", False),
    ((), ("L",), "C101", True),
])
def test_select_and_ignore_as_ruff_does(select: tuple[str, ...], ignore: tuple[str, ...], code: str,
                                        shown: bool) -> None:
    assert chosen(code, select, ignore) is shown


def test_unknown_selectors_are_named() -> None:
    assert unknown(("C1", "Z9", "L001", "C999")) == ["Z9", "C999"]


def _broken(tmp_path: Path) -> Path:
    """A repository with a core fault (C110: a reshape of another element count) and a layout one (L003)."""
    model = tmp_path / "models" / "m"
    (model / "1").mkdir(parents=True)
    (model / "extra").mkdir()
    (model / "1" / "model.py").write_text("")
    (model / "config.pbtxt").write_text(
        'name: "m"\nbackend: "python"\nmax_batch_size: 0\n'
        'input [{ name: "x" data_type: TYPE_FP32 dims: [4] reshape: { shape: [3] } }]\n'
        'output [{ name: "y" data_type: TYPE_FP32 dims: [4] }]\n')
    return tmp_path / "models"


def test_findings_carry_their_codes_in_text_and_json(tmp_path: Path) -> None:
    repository = _broken(tmp_path)
    findings, _, _ = check_repository(repository, "24.10", run_models=False)
    assert {f.code for f in findings} >= {"C110", "L003"} and all(f.code in RULES for f in findings)
    text = run_cli("check", str(repository), "--no-run", "--triton-version", "24.10")
    assert text.code == 1 and re.search(r"^error +\S+config.pbtxt:4: C110 m: model input 'x'", text.out, re.M), text.out
    as_json = run_cli("check", str(repository), "--no-run", "--triton-version", "24.10", "--format", "json")
    assert {"code": "L003", "rule": "non-numeric-folder"}.items() <= next(
        f for f in __import__("json").loads(as_json.out)["findings"] if f["code"] == "L003").items()


def test_select_and_ignore_choose_what_check_reports_and_its_exit_code(tmp_path: Path) -> None:
    repository = _broken(tmp_path)
    only_layout = run_cli("check", str(repository), "--no-run", "--triton-version", "24.10", "--select", "L")
    assert only_layout.code == 0 and " L003 " in only_layout.out and "C110" not in only_layout.out
    no_core = run_cli("check", str(repository), "--no-run", "--triton-version", "24.10", "--ignore", "C110,L")
    assert no_core.code == 0 and "0 error(s), 0 warning(s)" in no_core.out
    typo = run_cli("check", str(repository), "--no-run", "--select", "X1")
    assert typo.code == 2 and "X1 names no rule" in typo.err


def test_validate_names_the_rule_a_manifest_breaks(tmp_path: Path) -> None:
    manifest = tmp_path / "models.yaml"
    manifest.write_text('triton_version: "22.02"\nmodels:\n  - name: m\n    source: {python: "x:y"}\n'
                        "    inputs: [{name: x, dtype: FP32, dims: [4]}]\n")
    result = run_cli("validate", str(manifest))
    assert result.code == 1 and re.search(r"models.yaml:5:\d+: T102: model 'm': inputs\[0\]\.name: ", result.err), \
        result.err
