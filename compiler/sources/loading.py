"""Build the eager module for each kind of source."""

from __future__ import annotations

import difflib
import importlib
import importlib.util
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from compiler.backend.pytorch import pt2_names
from compiler.manifest.schema import (
    ModelSpec,
    PackageSource,
    PythonSource,
    TorchscriptSource,
    TorchvisionSource,
    TransformersSource,
)
from compiler.sources.noise import kept_out, silence_known_chatter
from compiler.sources.static import existing_file, fail, transformers_folder


def load_source(model: ModelSpec, base: Path, allow: Sequence[Path] = ()) -> Any:
    """The eager nn.Module (or, for torchscript sources, the loaded ScriptModule), in eval mode.

    `allow`: folders outside `base` that manifest paths may point into (build --allow-path)."""
    import torch

    silence_known_chatter()
    source = model.source
    # Random initialisation is seeded so that a model without weights is the same
    # model in every process: the build, `verify` and the tests compare against it.
    torch.manual_seed(0)
    if isinstance(source, TorchvisionSource):
        module = _torchvision(model, source)
        weights = source.weights
    elif isinstance(source, TransformersSource):
        module, weights = _transformers(model, source, base, allow), None
    elif isinstance(source, PythonSource):
        module = _python(model, source, base)
        weights = source.weights
    elif isinstance(source, TorchscriptSource):
        return _torchscript(model, source, base, allow)
    elif isinstance(source, PackageSource):
        return load_package_source(model, source, base, allow)
    else:  # pragma: no cover - the schema admits no other kind
        raise TypeError(f"unknown source {source!r}")
    if weights:
        _load_weights(model, module, existing_file(model, "weights", weights, base, allow))
    return module.eval()


def _torchvision(model: ModelSpec, source: TorchvisionSource) -> Any:
    """Random weights everywhere: `weights=None`, and `weights_backbone=None` where the builder has a pretrained
    backbone (segmentation and detection models), so that nothing is downloaded."""
    import inspect

    import torchvision

    names = torchvision.models.list_models()
    if source.torchvision not in names:
        close = difflib.get_close_matches(source.torchvision, names, n=3)
        hint = f"did you mean {', '.join(close)}?" if close else "see torchvision.models.list_models()"
        raise fail(model, "torchvision", f"torchvision has no model '{source.torchvision}'", hint)
    builder = torchvision.models.get_model_builder(source.torchvision)
    kwargs: dict[str, Any] = {"weights": None}
    if "weights_backbone" in inspect.signature(builder).parameters:
        kwargs["weights_backbone"] = None
    kwargs.update(source.kwargs or {})
    try:
        return builder(**kwargs)
    except Exception as err:
        text = str(err).splitlines()[0] if str(err) else type(err).__name__
        if "urlopen" in text.lower() or "http" in text.lower() or isinstance(err, OSError):
            raise fail(model, "kwargs", f"torchvision's {source.torchvision} tried to download weights: {text}",
                       "keep the weights random (no weights in kwargs), or give a state_dict file as `weights:`") \
                from None
        raise fail(model, "kwargs", f"torchvision.models.get_model('{source.torchvision}') failed: {err}") from None


def _transformers(model: ModelSpec, source: TransformersSource, base: Path, allow: Sequence[Path]) -> Any:
    import transformers

    # its "Loading weights" bar is drawn once per load into the build's own progress lines: nothing to follow there
    transformers.utils.logging.disable_progress_bar()
    target = source.transformers
    folder = transformers_folder(model, source, base, allow)
    local = folder is not None
    location = str(folder) if folder is not None else target
    auto = getattr(transformers, source.auto_class, None)
    if auto is None or not hasattr(auto, "from_pretrained"):
        raise fail(model, "auto_class", f"transformers has no loader '{source.auto_class}'", "use AutoModel")
    try:
        with _report_kept_out():
            module, info = auto.from_pretrained(location, local_files_only=local, attn_implementation="eager",
                                                output_loading_info=True)
    except OSError as err:
        hint = None if local else "no model hub is reachable here: download the model and name its folder"
        raise fail(model, "transformers", f"could not load '{target}': {err}", hint) from None
    except Exception as err:
        raise fail(model, "transformers", f"loading '{target}' failed: {type(err).__name__}: {err}") from None
    # Its ModelOutput is adapted by the export (export/adapt.py): transformers 5 does not honour return_dict=False
    # everywhere (GPT-2 and CLIP from a folder then fail inside forward()). A cache is no tensor Triton can serve.
    if getattr(module.config, "use_cache", None):
        module.config.use_cache = False
    missing = sorted((info or {}).get("missing_keys") or [])
    if missing:
        setattr(module, INITIALISED_AT_RANDOM, missing)
    return module


#: The attribute a transformers module loaded with weights its checkpoint lacks carries: their names.
INITIALISED_AT_RANDOM = "_triton_compiler_initialised_at_random"


def initialised_at_random(module: Any) -> list[str]:
    """The weights the loader initialised (seeded, not from the checkpoint): a head the Auto class adds to a base
    model's folder (AutoModelForSequenceClassification's classifier over MiniLM's own weights, say)."""
    return list(getattr(module, INITIALISED_AT_RANDOM, []))


def _report_kept_out() -> AbstractContextManager[None]:
    """transformers 5 logs a table of the checkpoint's missing and unexpected keys at every load; the build says the
    missing ones itself, once, as a warning on the model (initialised_at_random), so the table is kept out."""
    return kept_out(("transformers.modeling_utils", "transformers.utils.loading_report"), "LOAD REPORT")


def _import_beside(module_name: str, base: Path) -> ModuleType | None:
    """Import `module_name` from the manifest's folder if it lives there."""
    parts = module_name.split(".")
    candidates = [base.joinpath(*parts).with_suffix(".py"), base.joinpath(*parts) / "__init__.py"]
    for path in candidates:
        if path.is_file():
            spec = importlib.util.spec_from_file_location(
                f"_compiler_manifest_module_{abs(hash(path))}",
                path,
                submodule_search_locations=[str(path.parent)] if path.name == "__init__.py" else None,
            )
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
    return None


@contextmanager
def _beside_on_path(base: Path) -> Iterator[None]:
    """The manifest's folder first on sys.path while a factory's module is imported and called, so that it can
    import the modules beside it, as a script run from that folder does."""
    import sys

    folder = str(Path(base).resolve())
    sys.path.insert(0, folder)
    try:
        yield
    finally:
        if folder in sys.path:
            sys.path.remove(folder)


def python_module_file(module_name: str, base: Path) -> Path | None:
    """The file that a `python:` source would import, without importing it."""
    parts = module_name.split(".")
    for path in (base.joinpath(*parts).with_suffix(".py"), base.joinpath(*parts) / "__init__.py"):
        if path.is_file():
            return path
    try:
        spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        return None
    return Path(spec.origin) if spec and spec.origin and spec.origin != "built-in" else None


def _python(model: ModelSpec, source: PythonSource, base: Path) -> Any:
    import torch

    module_name, _, attr = source.python.partition(":")
    try:
        with _beside_on_path(base):
            module = _import_beside(module_name, base) or importlib.import_module(module_name)
    except Exception as err:
        raise fail(model, "python", f"importing '{module_name}' failed: {type(err).__name__}: {err}",
                    f"the module is looked up beside the manifest ({base}), then on sys.path") from None
    factory: Any = module
    for part in attr.split("."):
        factory = getattr(factory, part, None)
        if factory is None:
            names = [n for n in dir(module) if not n.startswith("_")]
            close = difflib.get_close_matches(part, names, n=1)
            raise fail(model, "python", f"'{module_name}' has no '{attr}'",
                        f"did you mean '{close[0]}'?" if close else None)
    if not callable(factory):
        raise fail(model, "python", f"'{source.python}' is not callable")
    try:
        with _beside_on_path(base):
            built = factory(**(source.kwargs or {}))
    except Exception as err:
        raise fail(model, "python", f"'{source.python}' raised {type(err).__name__}: {err}") from None
    if not isinstance(built, torch.nn.Module):
        raise fail(model, "python", f"'{source.python}' returned {type(built).__name__}, not a torch.nn.Module")
    return built


def _load_weights(model: ModelSpec, module: Any, path: Path) -> None:
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise fail(model, "weights", f"{path} is not a loadable state_dict: {type(err).__name__}: {err}",
                    "save it with torch.save(model.state_dict(), path)") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    try:
        module.load_state_dict(state)
    except Exception as err:
        raise fail(model, "weights", f"{path} does not fit the model: {err}".splitlines()[0],
                    "the state_dict must come from the same architecture") from None


class LoadedPackage:
    """An AOTInductor package given as a source: the loaded package (called as it is served, its input checks on),
    and the file it came from (the build copies it as the model file)."""

    def __init__(self, path: Path, loaded: Any) -> None:
        self.path, self.loaded = path, loaded

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.loaded(*args, **kwargs)

    def call_spec(self) -> tuple[str, str]:
        spec: tuple[str, str] = tuple(self.loaded.loader.get_call_spec())  # type: ignore[assignment]
        return spec


def load_package_source(model: ModelSpec, source: PackageSource, base: Path, allow: Sequence[Path] = ()) -> Any:
    import os

    import torch

    path = existing_file(model, "pt2", source.pt2, base, allow)
    os.environ.setdefault(pt2_names.RUNTIME_CHECKS_ENV, "1")  # checked inputs, as the package is served
    try:
        return LoadedPackage(path, torch._inductor.aoti_load_package(str(path)))
    except Exception as err:
        raise fail(model, "pt2", f"{path} is not an AOTInductor package this torch loads: {err}".splitlines()[0],
                   "give a .pt2 written by torch._inductor.aoti_compile_and_package") from None


def _torchscript(model: ModelSpec, source: TorchscriptSource, base: Path, allow: Sequence[Path]) -> Any:
    import torch

    path = existing_file(model, "torchscript", source.torchscript, base, allow)
    try:
        module = torch.jit.load(str(path), map_location="cpu")
    except Exception as err:
        raise fail(model, "torchscript", f"{path} is not a TorchScript file: {err}".splitlines()[0]) from None
    return module.eval()
