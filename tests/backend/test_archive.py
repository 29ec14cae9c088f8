"""forward()'s arguments read from a TorchScript archive without torch (check --no-run), against torch's own."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from compiler.backend.pytorch.archive import forward_arguments


class Two(torch.nn.Module):
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return input_ids * attention_mask


class Outer(torch.nn.Module):
    """A module whose class lives in a module path (code/__torch__/<path>.py) and holds another module."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = Two()

    def forward(self, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.inner(a, b) + c


@pytest.mark.parametrize("make", [
    lambda: torch.jit.script(Two()),
    lambda: torch.jit.trace(Two(), (torch.ones(1, 3), torch.ones(1, 3))),
    lambda: torch.jit.script(Outer()),
    lambda: torch.jit.freeze(torch.jit.script(Outer()).eval()),
], ids=["scripted", "traced", "nested", "frozen"])
def test_the_arguments_are_torchs_own(make: object, tmp_path: Path) -> None:
    module = make()  # type: ignore[operator]
    path = tmp_path / "model.pt"
    torch.jit.save(module, str(path))
    expected = [a.name for a in torch.jit.load(str(path)).forward.schema.arguments[1:]]
    assert forward_arguments(path) == expected


def test_a_file_that_is_no_archive_says_nothing(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(b"not a zip")
    assert forward_arguments(path) is None and forward_arguments(tmp_path / "absent.pt") is None
