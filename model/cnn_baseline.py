"""The original design's CNN hybrid baseline: a fast CPU model for the same tasks.

Seed design steps 1-6: a Conv/MaxPool/GlobalAveragePool encoder for the high-res image and
one for the low-res image -> concatenation -> MLP adaptor into the text width -> a small
language model over the text -> fusion by concatenation or attention -> a task head
(`model.heads`). It reads the same batches as the DeepSeek-VL models (`VLCollator`), so the
two can be compared on one data set.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from model.heads import FUSIONS, AttentionPool, masked_mean


@dataclass
class CNNBaselineConfig:
    """Sizes of the CNN hybrid baseline.

    vocab_size: the tokenizer's size (input_ids index the text embedding).
    image_token_id: positions holding this id are image slots, not text: ignored by the LM.
    high_res_channels / low_res_channels: output channels of each Conv-ReLU-MaxPool block.
    hidden_size: adaptor output = language-model width.
    text_layers / text_heads / text_intermediate: the small Llama over the text.
    fusion: "concat" ([visual, pooled text] -> 2*hidden) or "attention" (a learned query over
        the visual vector and the text states -> hidden).
    """

    vocab_size: int
    image_token_id: int
    high_res_channels: tuple[int, ...] = (16, 32, 64)
    low_res_channels: tuple[int, ...] = (16, 32)
    hidden_size: int = 64
    text_layers: int = 2
    text_heads: int = 4
    text_intermediate: int = 128
    max_position_embeddings: int = 2048
    fusion: str = "concat"
    extra: dict = field(default_factory=dict)


def conv_encoder(channels: tuple[int, ...]) -> nn.Sequential:
    """[Conv3x3 -> ReLU -> MaxPool2] per width, then GlobalAveragePool: [n, 3, h, w] -> [n, c]."""
    layers: list[nn.Module] = []
    previous = 3
    for width in channels:
        layers += [nn.Conv2d(previous, width, kernel_size=3, padding=1), nn.ReLU(inplace=True),
                   nn.MaxPool2d(2)]
        previous = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers)


class CNNHybridBaseline(nn.Module):
    """Encoder half of the baseline: ``representation(batch) -> [b, representation_dim]``."""

    def __init__(self, config: CNNBaselineConfig):
        super().__init__()
        from transformers import LlamaConfig, LlamaModel

        if config.fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}")
        self.config = config
        self.high_res_encoder = conv_encoder(config.high_res_channels)
        self.low_res_encoder = conv_encoder(config.low_res_channels)
        visual_in = config.high_res_channels[-1] + config.low_res_channels[-1]
        self.adaptor = nn.Sequential(nn.Linear(visual_in, config.hidden_size), nn.GELU(),
                                     nn.Linear(config.hidden_size, config.hidden_size))
        self.language_model = LlamaModel(LlamaConfig(
            vocab_size=config.vocab_size, hidden_size=config.hidden_size,
            intermediate_size=config.text_intermediate, num_hidden_layers=config.text_layers,
            num_attention_heads=config.text_heads, num_key_value_heads=config.text_heads,
            max_position_embeddings=config.max_position_embeddings))
        self.pool = AttentionPool(config.hidden_size) if config.fusion == "attention" else None
        self.representation_dim = (2 * config.hidden_size if config.fusion == "concat"
                                   else config.hidden_size)

    @classmethod
    def for_processor(cls, processor, **overrides) -> "CNNHybridBaseline":
        """A baseline sized for a DeepSeek-VL processor's tokenizer and image token."""
        return cls(CNNBaselineConfig(vocab_size=len(processor.tokenizer),
                                     image_token_id=int(processor.image_token_id), **overrides))

    def visual(self, batch: dict[str, torch.Tensor], batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample visual vector [b, hidden] (mean over a sample's images) and has-image [b]."""
        hidden = self.config.hidden_size
        device = batch["input_ids"].device
        if "pixel_values" not in batch:
            return (torch.zeros(batch_size, hidden, device=device),
                    torch.zeros(batch_size, dtype=torch.bool, device=device))
        low = batch["pixel_values"]  # [n, 3, s, s]
        high = batch.get("high_res_pixel_values", low)  # SigLIP-only processors: reuse low-res
        features = torch.cat([self.high_res_encoder(high), self.low_res_encoder(low)], -1)  # [n, c]
        per_image = self.adaptor(features)  # [n, hidden]
        owner = batch.get("image_sample_index")
        if owner is None:  # one image per sample
            owner = torch.arange(per_image.shape[0], device=device)
        summed = torch.zeros(batch_size, hidden, device=device, dtype=per_image.dtype)
        summed.index_add_(0, owner, per_image)
        counts = torch.bincount(owner, minlength=batch_size).clamp(min=1).unsqueeze(-1)
        has_image = torch.bincount(owner, minlength=batch_size) > 0
        return summed / counts, has_image  # [b, hidden], [b]

    def representation(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        input_ids = batch["input_ids"]  # [b, t]
        text_mask = batch["attention_mask"].bool() & (input_ids != self.config.image_token_id)
        visual, has_image = self.visual(batch, input_ids.shape[0])
        text_states = self.language_model(
            input_ids=input_ids, attention_mask=text_mask.long()).last_hidden_state  # [b, t, d]
        if self.config.fusion == "concat":
            return torch.cat([visual, masked_mean(text_states, text_mask)], dim=-1)  # [b, 2d]
        sequence = torch.cat([visual.unsqueeze(1), text_states], dim=1)  # [b, 1 + t, d]
        mask = torch.cat([has_image.unsqueeze(1), text_mask], dim=1)
        return self.pool(sequence, mask)  # [b, d]
