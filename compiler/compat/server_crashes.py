"""Crashes of tritonserver itself that a config can expose to any client, each with the release that fixed it.

A config that exposes one is an error for a target that has it (the manifest at its line; `check` on any
repository). The embedded server is 24.10: `serve` says which of its outputs a request can end it with.

    for crash in crashes_of(Release.parse("24.10")):   # STRING_CLASSIFICATION
        crash.exposed_by(config)                          # the outputs a request can end the server with
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from compiler.releases import Release

STRING = "TYPE_STRING"


@dataclass(frozen=True)
class ServerCrash:
    code: str
    fixed_in: str  # the first release with the fix
    source: str
    what: str
    fix: str

    def affects(self, release: Release) -> bool:
        return not release.at_least(self.fixed_in)

    def said(self, release: Release | str) -> str:
        return f"tritonserver {release} exits on it: {self.what} [{self.code}: {self.source}]"


#: class_count on a TYPE_STRING output: TopkClassifications divides by the datatype's byte size, which is 0 for BYTES.
STRING_CLASSIFICATION = ServerCrash(
    "STRING-CLASSIFICATION", "25.07",
    "fixed by triton-inference-server/server PR #8267 (src/classification.cc, 2025-07-01), cherry-picked to r25.07 as "
    "#8309",
    "one request that asks class_count of a TYPE_STRING output ends the whole server (classification divides by the "
    "datatype's byte size, 0 for strings), over HTTP and gRPC alike",
    "answer classes as Triton's classification extension expects them: a numeric score output with label_filename, "
    "asked with class_count (a classify step's PROBABILITIES; `text_labels: false`)")
CRASHES = (STRING_CLASSIFICATION,)


def crashes_of(release: Release) -> list[ServerCrash]:
    return [crash for crash in CRASHES if crash.affects(release)]


def string_outputs(config: Any) -> list[str]:
    """The TYPE_STRING outputs of a ModelConfig: each one a request can end a server before 25.07 with."""
    from tritonclient.grpc import model_config_pb2 as pb

    return [o.name for o in config.output if pb.DataType.Name(o.data_type) == STRING]
