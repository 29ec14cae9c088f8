"""What an NVIDIA tritonserver image needs, beyond the repository, to serve a manifest's models safely.

One place for the container files (Dockerfile, docker-compose.yml) and the Kubernetes objects (`deploy`):

* `AOTI_RUNTIME_CHECK_INPUTS=1` where the manifest has AOTInductor packages: NVIDIA's pytorch_backend runs a
  package inside tritonserver, and the package's generated code checks its inputs' dtypes, sizes and strides only
  when this variable is set in that process (torch/_inductor/codegen/cpp_wrapper_cpu.py,
  `_check_aoti_runtime_check_inputs_env`); without it a size outside the package's ranges, or dims that must stay
  equal and do not, reach the compiled kernels.

    needs = server_needs(loaded)
    needs.environment         # {"AOTI_RUNTIME_CHECK_INPUTS": "1"}
"""

from __future__ import annotations

from dataclasses import dataclass, field

from compiler.export.aoti import RUNTIME_CHECKS_ENV
from compiler.manifest import LoadedManifest


@dataclass(frozen=True)
class ServerNeeds:
    environment: dict[str, str] = field(default_factory=dict)


def server_needs(loaded: LoadedManifest) -> ServerNeeds:
    environment = {}
    if any(model.export == "aoti" for model in loaded.manifest.models):
        environment[RUNTIME_CHECKS_ENV] = "1"
    return ServerNeeds(environment)
