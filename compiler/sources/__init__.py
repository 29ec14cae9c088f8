"""Turn a manifest `source:` into an nn.Module (or a loaded TorchScript module).

    module = load_source(model_spec, manifest_dir)

Every failure (import error, unknown model, missing weights, a factory that
raises) becomes a SourceError naming the model and field, never a traceback.
"""

from compiler.sources.loading import load_source
from compiler.sources.paths import resolve_path

__all__ = ["load_source", "resolve_path"]
