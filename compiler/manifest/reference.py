"""docs/manifest.md, the manifest reference, written from the pydantic models' field descriptions.

The schema in compiler/manifest/schema.py and pipelines.py is the one source of truth: this module renders
its JSON Schema as one table per object, in the order a reader meets them from the top of models.yaml.
`make schema` writes it; a test fails when the committed file is stale or a field has no description.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from compiler.manifest.schema import Manifest

REFERENCE_PATH = Path("docs") / "manifest.md"

_INTRO = """\
# The manifest: models.yaml

Generated from the pydantic models in `compiler/manifest/` by `make schema`; do not edit by hand (a test fails
when this file is stale). Editors complete and check the same keys through `proto/models.schema.json`, named on
the manifest's first line. Unknown keys are errors, reported with file, line, model and field.

Paths are relative to the manifest and must stay inside its folder; `--allow-path DIR` on `build`, `verify` and
`soak` (or `TRITON_COMPILER_ALLOW_PATHS`, folders separated by `:`) admits a folder elsewhere.
`package://<pkg>/<path>` names a folder inside an installed package without importing it. `python:` and
`torchscript:` sources are trusted code: they run in the build, like any import.
"""


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _type(node: dict[str, Any]) -> str:
    """A short, readable type: `int ≥ 0`, `list of InputSpec`, `one of: TorchvisionSource, ...`."""
    if "$ref" in node:
        return f"[{_ref_name(node['$ref'])}](#{_ref_name(node['$ref']).lower()})"
    for key in ("anyOf", "oneOf"):
        if key in node:
            kinds = [_type(option) for option in node[key] if option.get("type") != "null"]
            return kinds[0] if len(kinds) == 1 else " or ".join(kinds)
    if "enum" in node:
        return " \\| ".join(f"`{json.dumps(value)}`" for value in node["enum"])
    if "const" in node:
        return f"`{json.dumps(node['const'])}`"
    kind = node.get("type")
    if kind == "array" and "prefixItems" in node:
        return "[" + ", ".join(_type(item) for item in node["prefixItems"]) + "]"
    if kind == "array":
        return f"list of {_type(node.get('items', {}))}"
    if kind == "object":
        extra = node.get("additionalProperties")
        return f"map of {_type(extra)}" if isinstance(extra, dict) and extra else "map"
    text = {"integer": "int", "number": "number", "string": "string", "boolean": "bool"}.get(str(kind), "any")
    if "pattern" in node:
        text += f" `{node['pattern']}`"
    if "minimum" in node:
        text += f" ≥ {node['minimum']}"
    if "exclusiveMinimum" in node:
        text += f" > {node['exclusiveMinimum']}"
    if "maximum" in node:
        text += f" ≤ {node['maximum']}"
    return text


def _refs(node: Any) -> Iterator[str]:
    """The definitions a node names, in document order."""
    if isinstance(node, dict):
        if "$ref" in node:
            yield _ref_name(node["$ref"])
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def undescribed_fields(schema: dict[str, Any]) -> list[str]:
    """`Object.field` for every field without a description: the reference would have a hole there."""
    objects = {"Manifest": schema, **schema["$defs"]}
    return [f"{name}.{field}" for name, obj in objects.items()
            for field, node in obj.get("properties", {}).items() if not node.get("description")]


def _table(name: str, obj: dict[str, Any]) -> list[str]:
    lines = [f"## {name}", ""]
    if obj.get("description"):
        lines += [" ".join(obj["description"].split()), ""]
    lines += ["| key | type | default | meaning |", "|---|---|---|---|"]
    required = set(obj.get("required", ()))
    for field, node in obj.get("properties", {}).items():
        default = "required" if field in required else f"`{json.dumps(node.get('default'))}`"
        description = " ".join(str(node.get("description", "")).split()).replace("|", "\\|")
        lines.append(f"| `{field}` | {_type(node)} | {default} | {description} |")
    return lines + [""]


def manifest_reference() -> str:
    schema = Manifest.model_json_schema()  # fields in the order the models declare them
    definitions = schema["$defs"]
    order: list[str] = []
    pending = list(_refs(schema["properties"]))
    while pending:
        name = pending.pop(0)
        if name not in order:
            order.append(name)
            pending += list(_refs(definitions[name].get("properties", definitions[name])))
    lines = [_INTRO, *_table("Manifest (the top level)", schema)]
    for name in order:
        lines += _table(name, definitions[name])
    lines += _model_config_fields()
    lines += _IMPORTING.splitlines()
    return "\n".join(lines).rstrip() + "\n"


_IMPORTING = """
## Importing a repository

`compiler import REPO --output models.yaml` writes a manifest that builds an existing repository again. Each
TorchScript model (`pytorch_libtorch`, or backend `pytorch` beside a `model.pt`) becomes an entry whose source is its
own file (`torchscript:`, `export: script`), every field written with its key and explicitly (dynamic batching and
its queue policy, instance groups, parameters, labels, versions as `version` and `keep_versions`, reshapes, formats),
so that the build derives nothing the config did not say; warmup is `true` where the build writes the same samples.
Every other ModelConfig field goes under `config:`. Built again, the configs are identical (a test builds, imports and
builds). The command names each thing it cannot import, with why: an AOTInductor package (compiled code, not a model
torch.export can export again: give its eager source), an ensemble (write it as a pipeline), a Python model, another
backend, an input's `allow_ragged_batch`, an instance group's `rate_limiter`.
"""


def _model_config_fields() -> list[str]:
    """Every field of Triton's ModelConfig (the newest schema here, tritonclient's), and how a manifest sets it."""
    from tritonclient.grpc import model_config_pb2 as pb

    from compiler.manifest.raw_config import APPLIES, OWNED

    lines = ["## Triton's ModelConfig, field by field", "",
             "Every field of `inference.ModelConfig` (model_config.proto, as the installed tritonclient has it), and "
             "the manifest key that sets it. The others are set raw with a model's `config:`, checked against the "
             "target release's own schema at the build (a field the release does not have is an error at the "
             "`config` line). Where a field cannot apply to a PyTorch model, or applies only in part, the last column says why, "
             "from NVIDIA's pytorch_backend sources.", "", "| ModelConfig field | set by | on a PyTorch model |",
             "|---|---|---|"]
    for field in pb.ModelConfig.DESCRIPTOR.fields:
        key, _, why = OWNED.get(field.name, "").partition(" (")
        how = (f"`{key}`" + (f" ({why}" if why else "")) if key else f"`config: {{{field.name}: ...}}`"
        lines.append(f"| `{field.name}` | {how} | {APPLIES.get(field.name, '')} |")
    return [*lines, ""]
