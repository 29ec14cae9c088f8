"""Walk an object along kserve's generated models: unknown keys, wrong types and missing required fields fail.

Run as `python -m compiler.deploy.kserve_models < object.json`: exit 0 valid, 2 invalid (the reason on stdout).
It runs apart from the compiler's process because kserve and tritonclient define the same protobuf messages.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any


class Invalid(Exception):
    pass


_LIST = re.compile(r"^(?:list|List)\[(.*)\]$")
_DICT = re.compile(r"^(?:dict\(([^,]*), (.*)\)|Dict\[([^,]*), (.*)\])$")
_PRIMITIVES: dict[str, tuple[type, ...]] = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,),
                                            "object": (object,)}


def _model_class(name: str) -> Any:
    import kserve.models
    import kubernetes.client.models

    for module in (kserve.models, kubernetes.client.models):
        found = getattr(module, name, None)
        if found is not None:
            return found
    return None


def _walk(value: Any, kind: Any, where: str) -> Any:
    if isinstance(kind, str):
        if (match := _LIST.match(kind)) is not None:
            if not isinstance(value, list):
                raise Invalid(f"{where}: expected a list, got {type(value).__name__}")
            return [_walk(item, match.group(1), f"{where}[{i}]") for i, item in enumerate(value)]
        if (match := _DICT.match(kind)) is not None:
            if not isinstance(value, dict):
                raise Invalid(f"{where}: expected a mapping, got {type(value).__name__}")
            inner = match.group(2) or match.group(4)
            return {k: _walk(v, inner, f"{where}.{k}") for k, v in value.items()}
        if kind in _PRIMITIVES:
            if not isinstance(value, _PRIMITIVES[kind]) or (kind == "int" and isinstance(value, bool)):
                raise Invalid(f"{where}: expected {kind}, got {value!r}")
            return value
        model = _model_class(kind)
        if model is None:
            raise Invalid(f"{where}: unknown type {kind}")
        kind = model
    if not isinstance(value, dict):
        raise Invalid(f"{where}: expected an object, got {value!r}")
    by_json = {json_key: attr for attr, json_key in kind.attribute_map.items()}
    unknown = sorted(set(value) - set(by_json))
    if unknown:
        raise Invalid(f"{where}: unknown field(s) {', '.join(unknown)} for {kind.__name__}")
    kwargs = {by_json[k]: _walk(v, kind.openapi_types[by_json[k]], f"{where}.{k}") for k, v in value.items()}
    try:
        return kind(**kwargs)  # the generated setters check required fields and enums
    except (ValueError, TypeError) as err:
        raise Invalid(f"{where}: {err}") from None


def main() -> int:
    import kserve

    try:
        _walk(json.load(sys.stdin), kserve.V1beta1InferenceService, "InferenceService")
    except Invalid as err:
        print(err)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
