"""Triton Inference Server releases, named the NGC way (``yy.mm``).

The compiler targets one release per manifest; features and naming rules
depend on it. The default is the release of the tritonserver that the
``nvidia-pytriton`` wheel embeds (server 2.51), so that what we build is what
we serve locally.

    >>> Release.parse("22.02") < Release.parse("22.06")
    True
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PATTERN = re.compile(r"^(\d{2})\.(\d{2})$")


@dataclass(frozen=True, order=True)
class Release:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Release:
        match = _PATTERN.match(str(text).strip())
        if not match or not 1 <= int(match.group(2)) <= 12:
            raise ValueError(f"'{text}' is not a Triton release; write it the NGC way, e.g. \"24.10\"")
        return cls(int(match.group(1)), int(match.group(2)))

    def __str__(self) -> str:
        return f"{self.year:02d}.{self.month:02d}"

    def at_least(self, other: str) -> bool:
        return self >= Release.parse(other)


def _monthly(first: str, last: str, skipped: tuple[str, ...] = ()) -> list[str]:
    start, end = Release.parse(first), Release.parse(last)
    out = []
    year, month = start.year, start.month
    while (year, month) <= (end.year, end.month):
        name = f"{year:02d}.{month:02d}"
        if name not in skipped:
            out.append(name)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


#: Every release since 22.01 with its tritonserver version. Triton's GitHub releases are titled "Release 2.N.0
#: corresponding to NGC container YY.MM": 22.01 is 2.18.0 and each monthly release adds one, except that there
#: was no 25.07 (25.06 is 2.59.0, 25.08 is 2.60.0); the anchors checked against their release pages are
#: 22.06 = 2.23.0, 23.04 = 2.33.0, 23.06 = 2.35.0, 23.07 = 2.36.0, 24.10 = 2.51.0 (the embedded server),
#: 26.03 = 2.67.0 and 26.11 = 2.75.0.
SKIPPED_RELEASES = ("25.07",)
SERVER_VERSION: dict[str, str] = {
    name: f"2.{18 + index}.0" for index, name in enumerate(_monthly("22.01", "26.11", SKIPPED_RELEASES))
}
KNOWN_RELEASES = tuple(SERVER_VERSION)
NEWEST_RELEASE = KNOWN_RELEASES[-1]

#: Release of the tritonserver 2.51 binary in the nvidia-pytriton 0.7.0 wheel: what serves locally.
EMBEDDED_RELEASE = "24.10"
#: A manifest without triton_version targets the newest release we know.
DEFAULT_RELEASE = NEWEST_RELEASE


def is_known(text: str) -> bool:
    return str(text) in SERVER_VERSION


def known_release(text: str) -> Release:
    """A release we know, from its NGC name; a ValueError that says what is wrong otherwise (the manifest's
    `triton_version` and the CLI's --triton-version alike)."""
    release = Release.parse(str(text))
    if not is_known(str(release)):
        skipped = f"; there was no {', '.join(SKIPPED_RELEASES)}" if str(release) in SKIPPED_RELEASES else ""
        raise ValueError(f"Triton {release} is not a release we know (we know {KNOWN_RELEASES[0]} to "
                         f"{KNOWN_RELEASES[-1]}{skipped})")
    return release


def image(release: str) -> str:
    """NVIDIA's tritonserver image of a release (NGC), with the Python backend and the framework backends."""
    return f"nvcr.io/nvidia/tritonserver:{release}-py3"

#: The PyTorch backend binds inputs by forward() argument name from this release on.
FORWARD_ARGUMENT_NAMES_SINCE = "22.06"
#: The PyTorch backend accepts TYPE_STRING (List[str]) tensors from this release on.
PYTORCH_STRING_SINCE = "22.05"
#: TYPE_BF16 exists in the model configuration schema from this release on.
BF16_SINCE = "22.05"

#: tritonserver --model-config-name (configs/<name>.pbtxt beside config.pbtxt) from this release on:
#: triton-inference-server/server PR 7185 (core PR 348) merged on main in May 2024, and its cherry-pick
#: "Multiple Model Configurations (#7185)" (server PR 7233, core PR 357) merged 2024-05-16 into the 24.05
#: release branch, before 24.05 shipped.
MODEL_CONFIG_NAME_SINCE = "24.05"

# -- the PyTorch backend's AOTInductor (PT2) support, from the server release notes and pytorch_backend's source --
#: platform "torch_aoti": <version>/model.pt2 loaded with torch::inductor::AOTIModelPackageLoader (server 2.67.0;
#: pytorch_backend src/libtorch.cc dispatches platform == "torch_aoti" to its inductor model; core's
#: constants.h: kPyTorchAotiPlatform "torch_aoti", kPyTorchAotiFilename "model.pt2", backend "pytorch").
AOTI_SINCE = "26.03"
#: Names that follow the package's call spec: ARGS[i], ARGS[i][key], KWARGS[name], RESULT, RESULT[i], RESULT[key]
#: (pytorch_backend src/pt2/model_state.cc maps them from AOTIModelPackageLoader::get_call_spec()).
AOTI_CALL_SPEC_NAMES_SINCE = "26.05"
# What pytorch_backend's AOTI path does at each of its branches (batching, BF16, keyword arguments, input counts) is
# in compiler/compat/aoti_rules.py, read from the pinned sources: the release notes' "AOTI batching from 26.07" and
# "BF16 from 26.11" are in no source we have (the newest branch is r26.05), so they allow nothing.

#: Model-configuration features and the first release whose schema has them.
#: Used by `check` to flag configs that an older target release would reject.
CONFIG_FEATURES: dict[str, str] = {
    "TYPE_BF16": BF16_SINCE,
    "iterative_sequence": "23.11",
    "runtime": "24.01",
    "is_non_linear_format_io": "24.08",
    "model_metrics": "24.11",
}
