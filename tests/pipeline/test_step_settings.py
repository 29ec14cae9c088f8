"""Step settings are typed: what each planner writes is exactly its kind's TypedDict (step_settings.py), values
included, and what the run-time steps read from step.json (pipeline/runtime/steps.py, which cannot import the
compiler) is declared there."""

from __future__ import annotations

import ast

import pytest
from pydantic import TypeAdapter

from compiler.manifest import load_manifest
from compiler.manifest.step_settings import OF_KIND, TokenizerFiles, settings_of
from compiler.manifest.wiring import StepPlan, plan_all
from tests.helpers import FIXTURES, ROOT

RUNTIME = ROOT / "compiler" / "pipeline" / "runtime" / "steps.py"
#: Manifests whose pipelines have every kind of step between them (fused and not).
MANIFESTS = [ROOT / "models.yaml", FIXTURES / "pipeline" / "models.yaml"]


def _steps() -> list[StepPlan]:
    return [step for path in MANIFESTS for plan in plan_all(load_manifest(path)) for step in plan.steps]


def _declared(kind: type) -> set[str]:
    return set(kind.__required_keys__) | set(kind.__optional_keys__)  # type: ignore[attr-defined]


def test_the_manifests_plan_every_kind_of_step() -> None:
    assert {step.kind for step in _steps()} == set(OF_KIND)


@pytest.mark.parametrize("step", _steps(), ids=lambda step: f"{step.model}")
def test_each_planners_settings_are_its_kinds_typed_dict(step: StepPlan) -> None:
    kind = OF_KIND[step.kind]
    assert step.settings["kind"] == step.kind
    keys = set(step.settings)
    assert set(kind.__required_keys__) <= keys <= _declared(kind), (step.kind, keys ^ _declared(kind))  # type: ignore[attr-defined]
    TypeAdapter(kind).validate_python(step.settings, strict=True)  # each value of its declared type
    assert settings_of(step, kind) is step.settings
    other = next(k for name, k in OF_KIND.items() if name != step.kind)
    with pytest.raises(TypeError, match=f"is a {step.kind} step"):
        settings_of(step, other)


def _reads(tree: ast.Module) -> dict[str, set[str]]:
    """Each run-time step class's name -> the keys it reads from `settings` (settings["k"], settings.get("k"))."""
    reads: dict[str, set[str]] = {}
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        found = reads.setdefault(node.name, set())
        for inner in ast.walk(node):
            if isinstance(inner, ast.Subscript) and isinstance(inner.value, ast.Name) and \
                    inner.value.id == "settings" and isinstance(inner.slice, ast.Constant):
                found.add(str(inner.slice.value))
            if isinstance(inner, ast.Call) and isinstance(inner.func, ast.Attribute) and inner.func.attr == "get" \
                    and isinstance(inner.func.value, ast.Name) and inner.func.value.id == "settings" and \
                    inner.args and isinstance(inner.args[0], ast.Constant):
                found.add(str(inner.args[0].value))
    return reads


def _kinds(tree: ast.Module) -> dict[str, str]:
    """steps.py's KINDS: step kind -> the class that runs it."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "KINDS" for t in node.targets):
            assert isinstance(node.value, ast.Dict)
            return {str(ast.literal_eval(k)): v.id for k, v in zip(node.value.keys, node.value.values)  # type: ignore[arg-type, attr-defined]
                    if k is not None}
    raise AssertionError("steps.py has no KINDS")


def test_what_the_run_time_steps_read_is_declared_for_their_kind() -> None:
    tree = ast.parse(RUNTIME.read_text())
    reads, kinds = _reads(tree), _kinds(tree)
    generated = {name for name in OF_KIND if name not in ("model", "encoder")}  # Triton runs those two itself
    assert set(kinds) == generated
    for kind, cls in kinds.items():
        declared = _declared(OF_KIND[kind]) | (_declared(TokenizerFiles) if kind == "tokenize" else set())
        assert reads[cls], cls
        assert reads[cls] <= declared, (kind, reads[cls] - declared)


def test_the_check_of_reads_finds_an_undeclared_key() -> None:
    """The test above can fail: a step that reads a key no kind declares is found."""
    tree = ast.parse(RUNTIME.read_text().replace('settings["top_k"]', 'settings["top_n"]'))
    classify = _reads(tree)[_kinds(tree)["classify"]]
    assert "top_n" in classify - _declared(OF_KIND["classify"])
