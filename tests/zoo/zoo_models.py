"""Factories of the zoo: the kinds of models users bring, small enough for CI (random weights, tiny configs)."""

from __future__ import annotations

import torch
from torch import nn


def tiny_vit() -> nn.Module:
    """A ViT image classifier from a config: returns an ImageClassifierOutput (a dict)."""
    from transformers import ViTConfig, ViTForImageClassification

    config = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                       intermediate_size=64)
    config.num_labels = 5  # a common config key (set this way, it type-checks)
    return ViTForImageClassification(config)


def tiny_distilbert() -> nn.Module:
    """A DistilBERT sequence classifier from a config: returns a SequenceClassifierOutput."""
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    config = DistilBertConfig(vocab_size=100, dim=32, n_layers=1, n_heads=2, hidden_dim=64)
    config.num_labels = 3
    return DistilBertForSequenceClassification(config)


def tiny_t5_encoder() -> nn.Module:
    """A T5 encoder from a config: returns a BaseModelOutput."""
    from transformers import T5Config, T5EncoderModel

    return T5EncoderModel(T5Config(vocab_size=100, d_model=32, d_kv=8, d_ff=64, num_layers=1, num_heads=2))


def tiny_t5_step() -> nn.Module:
    """An encoder-decoder (T5) served one decoding step at a time, without its cache (docs/proof.md recipe): logits for
    the decoder ids given; the client runs the generation loop."""
    from transformers import T5Config, T5ForConditionalGeneration

    config = T5Config(vocab_size=100, d_model=32, d_kv=8, d_ff=64, num_layers=1, num_decoder_layers=1, num_heads=2,
                      use_cache=False)
    config.decoder_start_token_id = 0
    return T5ForConditionalGeneration(config)


def tiny_t5_with_cache() -> nn.Module:
    """The same encoder-decoder as generate() uses it: its output carries the key/value cache."""
    from transformers import T5Config, T5ForConditionalGeneration

    config = T5Config(vocab_size=100, d_model=32, d_kv=8, d_ff=64, num_layers=1, num_decoder_layers=1, num_heads=2)
    config.decoder_start_token_id = 0
    return T5ForConditionalGeneration(config)


class GruScorer(nn.Module):
    """One score per example from INT32 token ids, exported with torch.jit.script."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(50, 16)
        self.gru = nn.GRU(16, 16, batch_first=True)
        self.head = nn.Linear(16, 1)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        _, hidden = self.gru(self.embedding(ids.long()))
        return self.head(hidden[-1]).squeeze(-1)


def gru_scorer() -> nn.Module:
    return GruScorer()


def quantized_mlp() -> nn.Module:
    """A dynamically quantised MLP (int8 Linear weights)."""
    mlp = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4)).eval()
    return torch.ao.quantization.quantize_dynamic(mlp, {nn.Linear}, dtype=torch.qint8)


class OptionalScale(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        y = self.linear(x)
        return y * scale if scale is not None else y


def optional_scale() -> nn.Module:
    return OptionalScale()


class TwoHeads(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Linear(8, 16)
        self.classes = nn.Linear(16, 3)
        self.embedding = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.relu(self.body(x))
        return self.classes(h), self.embedding(h)


def two_heads() -> nn.Module:
    return TwoHeads()


class DictHeads(TwoHeads):
    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:  # type: ignore[override]
        logits, embedding = super().forward(x)
        return {"logits": logits, "probs": logits.softmax(-1), "embedding": embedding}


def dict_heads() -> nn.Module:
    return DictHeads()


class Positives(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[x > 0]


def positives() -> nn.Module:
    return Positives()


class Detector(nn.Module):
    """A torchvision detection model behind one image tensor in, fixed-size padded outputs out.

    Triton sends tensors, not lists of images, and takes tensors back, not lists of dicts: this takes one
    [3, H, W] image and returns the top `max_detections` boxes [K, 4], labels [K], scores [K] (padded with
    zeros) and how many are real. Serve it with `export: script` and `max_batch_size: 0`.
    """

    def __init__(self, model: nn.Module, max_detections: int = 20) -> None:
        super().__init__()
        self.model = model.eval()
        self.max_detections = max_detections

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        detections = self.model([image])
        found = detections[1][0] if isinstance(detections, tuple) else detections[0]  # scripted: (losses, dets)
        count = min(int(found["boxes"].shape[0]), self.max_detections)
        boxes = torch.zeros(self.max_detections, 4, dtype=image.dtype)
        labels = torch.zeros(self.max_detections, dtype=torch.int64)
        scores = torch.zeros(self.max_detections, dtype=image.dtype)
        boxes[:count] = found["boxes"][:count]
        labels[:count] = found["labels"][:count]
        scores[:count] = found["scores"][:count]
        return boxes, labels, scores, torch.tensor([count], dtype=torch.int64)


def detector() -> nn.Module:
    """docs/proof.md recipe: a torchvision detection model (random weights; every box kept) behind Detector."""
    import torchvision

    model = torchvision.models.detection.fasterrcnn_mobilenet_v3_large_320_fpn(
        weights=None, weights_backbone=None, box_score_thresh=0.0)
    return Detector(model)


def raw_detector() -> nn.Module:
    import torchvision

    return torchvision.models.detection.fasterrcnn_mobilenet_v3_large_320_fpn(weights=None, weights_backbone=None)


class Segmenter(nn.Module):
    """Returns an OrderedDict, as torchvision's segmentation models do ({"out": ..., "aux": ...})."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Conv2d(3, 8, 3, padding=1)
        self.out = nn.Conv2d(8, 4, 1)
        self.aux = nn.Conv2d(8, 4, 1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        from collections import OrderedDict

        features = torch.relu(self.body(x))
        return OrderedDict(out=self.out(features), aux=self.aux(features))


def segmenter() -> nn.Module:
    return Segmenter()


class HalfBrain(nn.Module):
    """BF16 in and BF16 out (Triton 26.11 serves BF16 for AOTI packages)."""

    def __init__(self) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 4)).to(torch.bfloat16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)


def bf16_mlp() -> nn.Module:
    return HalfBrain()


class Audio(nn.Module):
    """A 1-D convolution with a kernel of 10 samples, as wav2vec2's feature encoder: shorter inputs cannot be taken."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 8, kernel_size=10, stride=5)
        self.head = nn.Linear(8, 2)

    def forward(self, samples: torch.Tensor) -> torch.Tensor:
        features = torch.relu(self.conv(samples.unsqueeze(1)))
        return self.head(features.mean(-1))


def audio() -> nn.Module:
    return Audio()


class LastState(nn.Module):
    """An LSTM that returns (out, (h, c)): torch.export unrolls it over the sequence, fixing its length."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(4, 8, batch_first=True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out, (hidden, _) = self.lstm(x)
        return out, hidden[-1]


def lstm() -> nn.Module:
    return LastState()


def save_tiny_gpt2(folder: str) -> None:
    """A tiny GPT-2 (64 positions) saved as a transformers folder, as a user's own checkpoint is."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=100, n_positions=64, n_embd=32, n_layer=1, n_head=2, bos_token_id=0, eos_token_id=0)
    GPT2LMHeadModel(config).save_pretrained(folder)
