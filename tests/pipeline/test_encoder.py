"""The fused encoder's generated wrapper (compiler/pipeline/encoder.py) around a probe model whose answer says the
width each text ran at: ragged requests padded back into rows, texts of near length grouped, answers in order."""

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from compiler.pipeline import encoder

INPUTS = ["input_ids", "attention_mask", "token_type_ids"]


class _Probe(torch.nn.Module):
    """Token vectors [id, the width of the call]: mean pooling gives each text's mean id and the width it ran at."""

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        width = torch.full_like(input_ids, input_ids.shape[1]).to(torch.float32)
        hidden = torch.stack([input_ids.to(torch.float32), width], -1)
        return hidden, hidden[:, 0]


def _scripted(tmp_path: Path, grouped: bool, pooled: bool = True) -> Any:
    source = encoder.wrapper_source("p", "probe", INPUTS, "lengths", {"input_ids": 0}, INPUTS, True,
                                    0 if pooled else None, [] if pooled else [1], "attention_mask" if pooled else None,
                                    "mean" if pooled else None, False, real="attention_mask", grouped=grouped)
    path = tmp_path / f"encoder_{grouped}_{pooled}.py"
    path.write_text(source)
    return torch.jit.script(encoder._import(path).Encoder(torch.jit.script(_Probe())))


def _requests(lengths: list[int], width_of: int = 16) -> tuple[list[Any], list[list[int]]]:
    """One request per text, padded on the right to a multiple of `width_of` as the tokenizer step pads; ids are
    1000 + the text's number * 100 + the token's place, so each text's mean id is known."""
    ids, masks, texts = [], [], []
    for number, length in enumerate(lengths):
        width = -(-length // width_of) * width_of
        text = [1000 + number * 100 + place for place in range(length)]
        ids.append(np.array(text + [0] * (width - length), dtype=np.int64))
        masks.append(np.array([1] * length + [0] * (width - length), dtype=np.int64))
        texts.append(text)
    flat = [torch.from_numpy(np.concatenate(ids)), torch.from_numpy(np.concatenate(masks))]
    flat.append(torch.zeros_like(flat[0]))
    return [*flat, torch.tensor([[len(row)] for row in ids], dtype=torch.int32)], texts


def test_texts_of_near_length_run_together_at_their_own_width_and_answer_in_order(tmp_path: Path) -> None:
    arguments, texts = _requests([30, 3, 4, 29])
    with torch.inference_mode():
        answer = _scripted(tmp_path, grouped=True)(*arguments)
    assert answer[:, 0].tolist() == pytest.approx([float(np.mean(t)) for t in texts])  # each text its own row
    # 3 and 4 tokens pad to 8 for 7 real (within 1.15x), 29 and 30 to 60 for 59; the two groups are not merged
    assert answer[:, 1].tolist() == [30.0, 4.0, 4.0, 30.0]


def test_without_grouping_every_text_runs_at_the_longest_padded_row(tmp_path: Path) -> None:
    arguments, texts = _requests([30, 3, 4, 29])
    with torch.inference_mode():
        answer = _scripted(tmp_path, grouped=False)(*arguments)
    assert answer[:, 0].tolist() == pytest.approx([float(np.mean(t)) for t in texts])
    assert answer[:, 1].tolist() == [32.0] * 4  # the rows' width: the tokenizer's multiple of 16


def test_texts_far_apart_in_length_each_run_alone(tmp_path: Path) -> None:
    arguments, _ = _requests([1, 2, 4, 8, 16, 40])
    with torch.inference_mode():
        answer = _scripted(tmp_path, grouped=True)(*arguments)
    assert answer[:, 1].tolist() == [1.0, 2.0, 4.0, 8.0, 16.0, 40.0]


def test_an_answer_per_text_that_is_not_pooled_is_grouped_too(tmp_path: Path) -> None:
    arguments, texts = _requests([5, 50, 5])
    with torch.inference_mode():
        (first,) = _scripted(tmp_path, grouped=True, pooled=False)(*arguments)
    assert first.tolist() == [[texts[0][0], 5.0], [texts[1][0], 50.0], [texts[2][0], 5.0]]
