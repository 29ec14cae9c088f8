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


#: Release of the tritonserver 2.51 binary in the nvidia-pytriton 0.7.0 wheel.
EMBEDDED_RELEASE = "24.10"
DEFAULT_RELEASE = EMBEDDED_RELEASE

#: The PyTorch backend binds inputs by forward() argument name from this release on.
FORWARD_ARGUMENT_NAMES_SINCE = "22.06"
#: The PyTorch backend accepts TYPE_STRING (List[str]) tensors from this release on.
PYTORCH_STRING_SINCE = "22.05"
#: TYPE_BF16 exists in the model configuration schema from this release on.
BF16_SINCE = "22.05"

#: tritonserver --model-config-name (configs/<name>.pbtxt beside config.pbtxt) from this release on
#: (triton-inference-server/server PR 7185, merged May 2024).
MODEL_CONFIG_NAME_SINCE = "24.06"

#: Model-configuration features and the first release whose schema has them.
#: Used by `check` to flag configs that an older target release would reject.
CONFIG_FEATURES: dict[str, str] = {
    "TYPE_BF16": BF16_SINCE,
    "iterative_sequence": "23.11",
    "runtime": "24.01",
    "is_non_linear_format_io": "24.08",
    "model_metrics": "24.11",
}
