"""What a served repository holds, and the config overrides a machine needs.

On a machine without a GPU, models configured KIND_GPU cannot load. For local
serving and verification we load them with explicit model control and a
config override (instance groups turned KIND_CPU), leaving the repository's
files as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from tritonclient.grpc import model_config_pb2 as pb

from compiler.errors import Problem, ServerError
from compiler.releases import EMBEDDED_RELEASE
from compiler.repository import layout
from compiler.triton_config import parse_text


@dataclass(frozen=True)
class RepositoryModel:
    name: str
    config: pb.ModelConfig
    override: dict[str, Any] | None  # JSON config to load instead, or None
    config_file: str = layout.CONFIG_FILE  # the file tritonserver reads, relative to the model folder

    notes: tuple[str, ...] = ()

    @property
    def note(self) -> str | None:
        return "; ".join(self.notes) + "; files unchanged" if self.notes else None


def gpu_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:
        return False


def served_config(config: pb.ModelConfig, has_gpu: bool) -> tuple[pb.ModelConfig, list[str]]:
    """The config this machine's embedded server loads for `config`, and why it differs (nothing: no notes).

    * Without a GPU, KIND_GPU instance groups load as KIND_CPU.
    * The embedded server (24.10) predates platform "torch_aoti": it refuses it alone ("unexpected platform type")
      and beside backend "pytorch" ("unexpected 'platform' and 'backend' pair"). It loads such a model when the
      config names the backend "pytorch_aoti", a copy of NVIDIA's PyTorch backend under that name (server/
      distribution.py), which picks its AOTI path from the platform, as the 26.xx server's "pytorch" does."""
    loaded = pb.ModelConfig()
    loaded.CopyFrom(config)
    notes = []
    if not has_gpu and any(g.kind == pb.ModelInstanceGroup.KIND_GPU for g in config.instance_group):
        for group in loaded.instance_group:
            if group.kind == pb.ModelInstanceGroup.KIND_GPU:
                group.kind = pb.ModelInstanceGroup.KIND_CPU
                del group.gpus[:]
        notes.append("KIND_GPU instance groups served as KIND_CPU (no GPU here)")
    if layout.is_aoti(config):
        loaded.backend = layout.AOTI_BACKEND_ALIAS
        loaded.default_model_filename = layout.model_filename(config)
        notes.append(f"platform {layout.AOTI_PLATFORM} loaded through backend {layout.AOTI_BACKEND_ALIAS} (the "
                     f"embedded {EMBEDDED_RELEASE} server predates the platform)")
    return loaded, notes


def read_repository(repository: Path, has_gpu: bool | None = None, variant: str | None = None) -> list[RepositoryModel]:
    repository = Path(repository)
    if not repository.is_dir():
        raise ServerError(Problem(f"no model repository at {repository}", hint="run `make repo` first"))
    has_gpu = gpu_available() if has_gpu is None else has_gpu
    models = []
    for folder in layout.model_folders(repository):
        chosen = layout.config_file(folder, variant)
        if not chosen.is_file():
            continue
        try:
            config = parse_text(chosen.read_text())
        except Exception as err:
            raise ServerError(Problem(f"config does not parse: {err}", file=chosen, model=folder.name)) from None
        loaded, notes = served_config(config, has_gpu)
        override = json_format.MessageToDict(loaded, preserving_proto_field_name=True) if notes else None
        models.append(RepositoryModel(folder.name, config, override, str(chosen.relative_to(folder)), tuple(notes)))
    if not models:
        raise ServerError(Problem(f"{repository} holds no model folder with a config.pbtxt", hint="run `make repo`"))
    if variant and all(m.config_file == layout.CONFIG_FILE for m in models):
        known = sorted({p.stem for folder in layout.model_folders(repository) for p in layout.variant_files(folder)})
        raise ServerError(Problem(f"no model in {repository} has a '{variant}' variant (configs/{variant}.pbtxt)",
                                  hint=f"variants built: {', '.join(known) or 'none'}; declare `variants:` in "
                                       "models.yaml and run `make repo`"))
    return models
