"""What an NVIDIA tritonserver image needs, beyond the repository, to serve a manifest's models safely.

One place for the container files (Dockerfile, docker-compose.yml) and the Kubernetes objects (`deploy`):

* `AOTI_RUNTIME_CHECK_INPUTS=1` where the manifest has AOTInductor packages: NVIDIA's pytorch_backend runs a
  package inside tritonserver, and the package's generated code checks its inputs' dtypes, sizes and strides only
  when this variable is set in that process (torch/_inductor/codegen/cpp_wrapper_cpu.py,
  `_check_aoti_runtime_check_inputs_env`); without it a size outside the package's ranges, or dims that must stay
  equal and do not, reach the compiled kernels.

* the Python packages the pipelines' steps import (an NVIDIA tritonserver image has Python and numpy, nothing
  more): `tokenizers` for a tokenize step, `pillow` for an image step, pinned to the versions the build's proof ran.
  The container files install them into the image; the Kubernetes objects install them with an init container
  into a volume the server finds on PYTHONPATH.

* `--cache-config=local,size=...` where a model asks for Triton's response cache (`response_cache: true`): the
  model's config enables it, and the server answers from a cache only when it starts with one.

    needs = server_needs(loaded)
    needs.environment         # {"AOTI_RUNTIME_CHECK_INPUTS": "1"}
    needs.arguments           # ["--cache-config=local,size=268435456"]
    needs.packages            # ["tokenizers==0.23.3", "pillow==12.1.0"]
"""

from __future__ import annotations

from dataclasses import dataclass, field

from compiler.export.aoti import RUNTIME_CHECKS_ENV
from compiler.manifest import LoadedManifest

#: What each kind of pipeline step imports beyond Python and numpy (distribution names).
STEP_PACKAGES = {"tokenize": ("tokenizers",), "image": ("pillow",)}
#: Where the Kubernetes objects install them (an emptyDir shared by the init container and the server).
PACKAGES_MOUNT = "/opt/pipeline-packages"
#: The local response cache's size, in bytes, where a model asks for the cache (tritonserver --cache-config).
RESPONSE_CACHE_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class ServerNeeds:
    environment: dict[str, str] = field(default_factory=dict)
    packages: list[str] = field(default_factory=list)  # pip requirements, pinned
    arguments: list[str] = field(default_factory=list)  # tritonserver's, after --model-repository


def _pinned(name: str) -> str:
    import importlib.metadata

    try:
        return f"{name}=={importlib.metadata.version(name)}"
    except importlib.metadata.PackageNotFoundError:
        return name


def server_needs(loaded: LoadedManifest) -> ServerNeeds:
    environment = {}
    if any(model.export == "aoti" for model in loaded.manifest.models):
        environment[RUNTIME_CHECKS_ENV] = "1"
    kinds = {step.kind for pipeline in loaded.manifest.pipelines or [] for step in pipeline.steps}
    names = sorted({name for kind in kinds for name in STEP_PACKAGES.get(kind, ())})
    arguments = [f"--cache-config=local,size={RESPONSE_CACHE_BYTES}"] \
        if any(model.response_cache for model in loaded.manifest.models) else []
    return ServerNeeds(environment, [_pinned(name) for name in names], arguments)
