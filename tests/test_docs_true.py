"""What the docs say that a test can check: every path of ours they name exists (docs/serving.md once named
compiler/bench/perf_analyzer.py after it had moved to compiler/profiling/), and `make help` lists every variable the
Makefile has (it once listed VARIANT=, which the Makefile did not define)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: `compiler/...`, `tests/...`, `docs/...`, `proto/...`, as code or as a link target; an anchor or a :line is cut off
PATH = re.compile(r"(?:`|\]\()((?:compiler|tests|docs|proto)/[A-Za-z0-9_./-]*[A-Za-z0-9_])/?(?:[#:][^`)]*)?(?:`|\))")


def named_paths(text: str) -> set[str]:
    return {match.group(1) for match in PATH.finditer(text)}


def test_the_pattern_finds_code_and_link_paths() -> None:
    text = "see `compiler/bench/runner.py`, [the manifest](docs/manifest.md#importing), `tests/check/cases/`"
    assert named_paths(text) == {"compiler/bench/runner.py", "docs/manifest.md", "tests/check/cases"}


def test_every_path_the_docs_name_exists() -> None:
    missing = {f"{doc.relative_to(ROOT)}: {path}" for doc in DOCS for path in named_paths(doc.read_text())
               if not (ROOT / path).exists() and not (doc.parent / path).exists()}
    assert not missing, sorted(missing)


def test_make_help_lists_every_variable_of_the_makefile_with_what_it_is() -> None:
    """`make help` derives its variable list from the Makefile's `?=` lines, each with the `#:` line above it."""
    import subprocess

    makefile = (ROOT / "Makefile").read_text().splitlines()
    variables = [line.split()[0] for line in makefile if re.match(r"^[A-Z_]+ \?=", line)]
    described = [line for at, line in enumerate(makefile) if re.match(r"^[A-Z_]+ \?=", line)
                 and makefile[at - 1].startswith("#: ")]
    assert len(variables) >= 10 and len(described) == len(variables), "each ?= variable needs a #: line above it"
    shown = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, timeout=60).stdout
    rows = {line.split()[0].split("=")[0]: line for line in shown.splitlines() if line.startswith("    ")}
    assert list(rows) == variables
    assert "VARIANT=" in rows["VARIANT"] and "serve and verify a variant" in rows["VARIANT"]


def test_the_release_lookup_order_is_stated_as_resolve_release_does_it() -> None:
    """check's help and docs/check.md say the order check/release.py's LOOKUP_ORDER states (the build record first
    after the flag: three statements once left it out)."""
    from compiler.check.release import LOOKUP_ORDER
    from tests.helpers import run_cli

    assert "".join(run_cli("check", "--help").out.split()).count("".join(LOOKUP_ORDER.split())) == 1  # click wraps
    stated = " ".join((ROOT / "docs" / "check.md").read_text().replace("`", "").split())
    assert "--triton-version, else the build record (build.json), else the FROM tag" in stated
