"""Each Triton release's own ModelConfig schema, to parse a config as that release would.

tritonclient wheels on PyPI carry their release's model_config_pb2: NGC yy.mm
ships the tritonclient of its server version (releases.SERVER_VERSION: 22.02 is
2.19.0, 24.10 is 2.51.0, and there was no 25.07). `make setup` fetches every release's module into the cache
(`python -m compiler.triton_config.release_schema`); checking never downloads, so the pre-commit hook works
offline. A release whose tritonclient was never published (2.72.0, 2.74.0, 2.75.0 at the time of writing) is parsed
with the newest earlier release's schema, and the caller says so. Each module runs in a subprocess with the
pure-Python protobuf, because two generations of the same .proto cannot share one descriptor pool.

    parsed = parse_for_release({"bert": text}, Release.parse("22.02"))
    parsed.errors, parsed.schema_release      # {name: message}, the release whose schema parsed them
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from compiler.cache import cache_root
from compiler.releases import SERVER_VERSION, Release

CACHE = cache_root() / "schemas"
#: Wheels kept whole after their schema is taken: 2.51.0 carries the perf_analyzer that runs here (bench/).
KEEP_WHEELS = {"2.51.0"}
_FIRST = Release.parse("22.02")

# Old generated modules build their map fields the old way; rebuilding the message class
# from their file descriptor in a fresh pool gives today's protobuf a proper class.
_PARSER = r"""
import importlib.util, json, sys
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format
spec = importlib.util.spec_from_file_location("release_model_config_pb2", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
pool = descriptor_pool.DescriptorPool()
pool.Add(descriptor_pb2.FileDescriptorProto.FromString(module.DESCRIPTOR.serialized_pb))
ModelConfig = message_factory.GetMessageClass(pool.FindMessageTypeByName("inference.ModelConfig"))
errors = {}
for name, text in json.load(sys.stdin).items():
    try:
        text_format.Parse(text, ModelConfig())
    except text_format.ParseError as err:
        errors[name] = str(err)
print(json.dumps(errors))
"""


class SchemaUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class Parsed:
    errors: dict[str, str]  # config name -> the parse error
    schema_release: Release  # the release whose schema parsed them (an earlier one where the target's is unpublished)


def tritonclient_version(release: Release) -> str:
    if release < _FIRST:
        raise SchemaUnavailable(f"no tritonclient schema is known before {_FIRST}")
    if str(release) not in SERVER_VERSION:
        raise SchemaUnavailable(f"Triton {release} is not a release we know")
    return SERVER_VERSION[str(release)]


def _module_path(version: str) -> Path:
    return CACHE / f"model_config_pb2_{version}.py"


def schema_module(release: Release) -> tuple[Path, Release]:
    """The cached schema of `release`, else of the newest earlier release that has one (never downloads)."""
    tritonclient_version(release)
    candidates = sorted((Release.parse(r) for r in SERVER_VERSION if _FIRST <= Release.parse(r) <= release),
                        reverse=True)
    for candidate in candidates:
        module = _module_path(SERVER_VERSION[str(candidate)])
        if module.is_file():
            return module, candidate
    raise SchemaUnavailable(f"no ModelConfig schema up to Triton {release} is cached in {CACHE}: run `make setup`")


def fetch_schema(version: str) -> Path | None:
    """Download tritonclient `version` and keep its model_config_pb2 (None: never published)."""
    module = _module_path(version)
    if module.is_file():
        return module
    try:
        wheel = tritonclient_wheel(version)
    except SchemaUnavailable:
        return None
    with zipfile.ZipFile(wheel) as archive:
        inner = next((n for n in archive.namelist() if n.endswith("tritonclient/grpc/model_config_pb2.py")), None)
        if inner is None:
            return None
        module.write_bytes(archive.read(inner))
    if version not in KEEP_WHEELS:
        wheel.unlink()
    return module


def fetch_all() -> tuple[list[str], list[str]]:
    """Every known release's schema into the cache: (fetched or present, never published) tritonclient versions.
    Versions found unpublished are remembered, and asked again only when the cache is cleared."""
    from concurrent.futures import ThreadPoolExecutor

    CACHE.mkdir(parents=True, exist_ok=True)
    unpublished_file = CACHE / "unpublished.txt"
    known_missing = set(unpublished_file.read_text().split()) if unpublished_file.is_file() else set()
    versions = sorted({v for r, v in SERVER_VERSION.items() if Release.parse(r) >= _FIRST} - known_missing)
    with ThreadPoolExecutor(max_workers=4) as pool:
        found = dict(zip(versions, pool.map(fetch_schema, versions)))
    missing = sorted(known_missing | {v for v, module in found.items() if module is None})
    unpublished_file.write_text("\n".join(missing) + "\n")
    return sorted(v for v, module in found.items() if module is not None), missing


def tritonclient_wheel(version: str, download: bool = True) -> Path:
    """The tritonclient wheel of `version` (its model_config_pb2, its perf_analyzer), cached in CACHE."""
    wheels = sorted(CACHE.glob(f"tritonclient-{version}*-*.whl"))
    if not wheels and download:
        CACHE.mkdir(parents=True, exist_ok=True)
        fetch = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                                "--platform", "manylinux1_x86_64", "--platform", "manylinux2014_x86_64",
                                "-d", str(CACHE), f"tritonclient=={version}.*"], capture_output=True, text=True)
        if fetch.returncode != 0:
            raise SchemaUnavailable(f"could not download tritonclient {version}: {fetch.stderr.strip()[-300:]}")
        wheels = sorted(CACHE.glob(f"tritonclient-{version}*-*.whl"))
    if not wheels:
        raise SchemaUnavailable(f"tritonclient {version} is not cached in {CACHE}")
    return wheels[0]


def parse_for_release(texts: dict[str, str], release: Release) -> Parsed:
    """The configs that `release`'s schema rejects (offline: from the cache that `make setup` fills)."""
    module, used = schema_module(release)
    env = {**os.environ, "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python"}
    done = subprocess.run([sys.executable, "-c", _PARSER, str(module)], input=json.dumps(texts), capture_output=True,
                          text=True, env=env, timeout=120)
    if done.returncode != 0:
        raise SchemaUnavailable(f"the {used} schema did not run: {done.stderr.strip()[-300:]}")
    return Parsed(dict(json.loads(done.stdout)), used)


if __name__ == "__main__":
    have, unpublished = fetch_all()
    print(f"release schemas: {len(have)} tritonclient versions cached in {CACHE}"
          + (f"; never published: {', '.join(unpublished)}" if unpublished else ""))
