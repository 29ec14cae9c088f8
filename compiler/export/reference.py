"""The eager model as the export serves it: the one reference that verify, soak and bench compare with.

Built as the build builds it: the manifest's source, inputs bound as the backend binds them (`bind`: by argument
name, by position, or by keyword for an AOTI package's KWARGS[...]), a dict result adapted as the export adapts it
(a tuple in key order for TorchScript, a plain dict for a package). Its outputs come back flat, in the order the
served model numbers them, with the position each config output name reaches.

    reference = EagerReference.load(model, manifest_dir)
    expected = reference.outputs(inputs)              # [Tensor, ...] in the served model's order
    reference.positions(["RESULT[logits]", ...])      # {"RESULT[logits]": 0, ...}
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from compiler.backend.pytorch import binding_rules as rules
from compiler.datatypes import Tensors
from compiler.export.adapt import adapted
from compiler.export.binding import Binding, bind
from compiler.export.examples import make_inputs, plans_for
from compiler.manifest.schema import ModelSpec


class EagerReference:
    def __init__(self, model: ModelSpec, module: Any, binding: Binding | None = None) -> None:
        """`binding`: how to call `module` where it cannot be bound from its own forward() (a loaded package takes
        the binding of the eager model it was exported from)."""
        import torch

        self.model = model
        self.binding: Binding = binding or bind(model, module)
        example = make_inputs(model, plans_for(model)[0])
        self.module, self.keys = adapted(module, self.binding, example, as_dict=model.export == "aoti")
        with torch.no_grad():
            self._example_result = self.run(example)

    @classmethod
    def load(cls, model: ModelSpec, directory: Path, allow_paths: Sequence[Path] = ()) -> EagerReference:
        from compiler.sources import load_source

        return cls(model, load_source(model, directory, allow_paths))

    def run(self, inputs: Tensors) -> Any:
        """The model's result for config-named inputs (torch tensors), as the export returns it."""
        return self.binding.call(self.module, inputs)

    def flatten(self, result: Any) -> list[Any]:
        if self.model.export == "aoti":
            from compiler.export.aoti import flatten_pt2

            return flatten_pt2(result)
        from compiler.export.proof import flatten

        return flatten(result)

    def outputs(self, inputs: Tensors) -> list[Any]:
        """The result's tensors in the served model's order (no_grad)."""
        import torch

        with torch.no_grad():
            return self.flatten(self.run(inputs))

    def positions(self, names: Sequence[str]) -> dict[str, int]:
        """Config output name -> its position among outputs(): `<name>__k` (else config order) for TorchScript,
        the call spec's names (RESULT[...], OUTPUT__n) for a package."""
        if self.model.export == "aoti":
            from compiler.export.aoti import output_positions

            return output_positions(self._example_result)
        return rules.bind_outputs(list(names))[1]


def load_built(folder: Path, version: int | None = None) -> Any:
    """The model file a build wrote into `folder` (of `version`; default the newest the config serves: the built
    one, where keep_versions kept earlier ones beside it), loaded as the serving backend loads it: an AOTI package
    with its input checks on, or a TorchScript module on the CPU."""
    import torch

    from compiler.repository import layout
    from compiler.triton_config import parse_text

    config = parse_text(layout.config_file(folder).read_text())
    if version is None:
        served = list(config.version_policy.specific.versions) or [int(d.name) for d in layout.version_dirs(folder)]
        version = max(served, default=1)
    path = layout.model_file(folder, version, config)
    if layout.is_aoti(config):
        from compiler.export.aoti import enable_runtime_checks

        enable_runtime_checks()
        return torch._inductor.aoti_load_package(str(path))
    return torch.jit.load(str(path), map_location="cpu").eval()
