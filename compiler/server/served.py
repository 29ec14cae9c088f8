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
from compiler.repository import layout
from compiler.triton_config import parse_text


@dataclass(frozen=True)
class RepositoryModel:
    name: str
    config: pb.ModelConfig
    override: dict[str, Any] | None  # JSON config to load instead, or None
    config_file: str = layout.CONFIG_FILE  # the file tritonserver reads, relative to the model folder

    @property
    def note(self) -> str | None:
        return "KIND_GPU instance groups served as KIND_CPU (no GPU here); files unchanged" if self.override else None


def gpu_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:
        return False


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
        override = None
        if not has_gpu and any(g.kind == pb.ModelInstanceGroup.KIND_GPU for g in config.instance_group):
            cpu = pb.ModelConfig()
            cpu.CopyFrom(config)
            for group in cpu.instance_group:
                if group.kind == pb.ModelInstanceGroup.KIND_GPU:
                    group.kind = pb.ModelInstanceGroup.KIND_CPU
                    del group.gpus[:]
            override = json_format.MessageToDict(cpu, preserving_proto_field_name=True)
        models.append(RepositoryModel(folder.name, config, override, str(chosen.relative_to(folder))))
    if not models:
        raise ServerError(Problem(f"{repository} holds no model folder with a config.pbtxt", hint="run `make repo`"))
    if variant and all(m.config_file == layout.CONFIG_FILE for m in models):
        known = sorted({p.stem for folder in layout.model_folders(repository) for p in layout.variant_files(folder)})
        raise ServerError(Problem(f"no model in {repository} has a '{variant}' variant (configs/{variant}.pbtxt)",
                                  hint=f"variants built: {', '.join(known) or 'none'}; declare `variants:` in "
                                       "models.yaml and run `make repo`"))
    return models
