"""The entry point of a build inside a toolchain venv (build/toolchain.py starts it): build, then answer with the
report or the user error as JSON.

    python -m compiler.build.inside_toolchain REQUEST.json
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from compiler.errors import UserError


def serve_request(path: Path) -> int:
    """Inside the toolchain: build, answer with the report or the user error."""
    from compiler.build.models import build_loaded
    from compiler.build.options import BuildOptions
    from compiler.manifest import load_manifest

    request = json.loads(path.read_text())
    answer = Path(request["answer"])

    def progress(text: str) -> None:
        print(text, flush=True)

    try:
        report = build_loaded(load_manifest(Path(request["manifest"])), Path(request["output"]), request["prints"],
                              progress, BuildOptions.from_request(request["options"]))
    except UserError as err:
        answer.write_text(json.dumps({"problems": [
            {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(p).items()} for p in err.problems]}))
        return 1
    answer.write_text(json.dumps({"report": json.loads(report.to_json())}))
    return 0


if __name__ == "__main__":
    sys.exit(serve_request(Path(sys.argv[1])))
