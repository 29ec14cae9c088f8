"""models.yaml: the schema (pydantic) and a loader that reports errors at YAML lines.

    manifest = load_manifest(Path("models.yaml"))
    for model in manifest.models: ...
"""

from compiler.manifest.loader import LoadedManifest, load_manifest
from compiler.manifest.schema import Manifest, ModelSpec

__all__ = ["LoadedManifest", "Manifest", "ModelSpec", "load_manifest"]
