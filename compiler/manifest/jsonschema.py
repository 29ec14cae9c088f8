"""The JSON Schema of models.yaml, generated from the pydantic models.

Committed as proto/models.schema.json so that editors (yaml-language-server)
complete and check the manifest; a test fails when it drifts from the models.
"""

from __future__ import annotations

import json
from pathlib import Path

from compiler.manifest.schema import Manifest

SCHEMA_PATH = Path("proto") / "models.schema.json"


def manifest_schema() -> str:
    schema = Manifest.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "models.yaml: the triton-repo-compiler manifest"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"
