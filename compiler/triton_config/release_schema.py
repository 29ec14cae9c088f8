"""Each Triton release's own ModelConfig schema, to parse a config as that release would.

tritonclient wheels on PyPI carry their release's model_config_pb2: NGC yy.mm
ships the tritonclient of its server version (releases.SERVER_VERSION: 22.02 is
2.19.0, 24.10 is 2.51.0, and there was no 25.07). The wheel is downloaded once into a cache (a package registry is
all it needs) and its module is run in a subprocess with the pure-Python
protobuf, because two generations of the same .proto cannot share one
descriptor pool.

    errors = parse_for_release({"bert": text}, Release.parse("22.02"))
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from compiler.releases import SERVER_VERSION, Release

CACHE = Path(os.environ.get("TRITON_COMPILER_CACHE", Path.home() / ".cache" / "triton-repo-compiler")) / "schemas"
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


def tritonclient_version(release: Release) -> str:
    if release < _FIRST:
        raise SchemaUnavailable(f"no tritonclient schema is known before {_FIRST}")
    if str(release) not in SERVER_VERSION:
        raise SchemaUnavailable(f"Triton {release} is not a release we know")
    return SERVER_VERSION[str(release)]


def schema_module(release: Release, download: bool = True) -> Path:
    version = tritonclient_version(release)
    module = CACHE / f"model_config_pb2_{version}.py"
    if module.is_file():
        return module
    wheel = tritonclient_wheel(version, download)
    with zipfile.ZipFile(wheel) as archive:
        inner = next((n for n in archive.namelist() if n.endswith("tritonclient/grpc/model_config_pb2.py")), None)
        if inner is None:
            raise SchemaUnavailable(f"{wheel.name} carries no model_config_pb2")
        module.write_bytes(archive.read(inner))
    return module


def tritonclient_wheel(version: str, download: bool = True) -> Path:
    """The tritonclient wheel of `version` (its model_config_pb2, its perf_analyzer), cached in CACHE."""
    wheels = sorted(CACHE.glob(f"tritonclient-{version}-*.whl"))
    if not wheels and download:
        CACHE.mkdir(parents=True, exist_ok=True)
        fetch = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                                "--platform", "manylinux1_x86_64", "--platform", "manylinux2014_x86_64",
                                "-d", str(CACHE), f"tritonclient=={version}"], capture_output=True, text=True)
        if fetch.returncode != 0:
            raise SchemaUnavailable(f"could not download tritonclient {version}: {fetch.stderr.strip()[-300:]}")
        wheels = sorted(CACHE.glob(f"tritonclient-{version}-*.whl"))
    if not wheels:
        raise SchemaUnavailable(f"tritonclient {version} is not cached in {CACHE}")
    return wheels[0]


def parse_for_release(texts: dict[str, str], release: Release, download: bool = True) -> dict[str, str]:
    """{name: parse error} for the configs that `release`'s schema rejects."""
    module = schema_module(release, download)
    env = {**os.environ, "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python"}
    done = subprocess.run([sys.executable, "-c", _PARSER, str(module)], input=json.dumps(texts), capture_output=True,
                          text=True, env=env, timeout=120)
    if done.returncode != 0:
        raise SchemaUnavailable(f"the {release} schema did not run: {done.stderr.strip()[-300:]}")
    return dict(json.loads(done.stdout))
