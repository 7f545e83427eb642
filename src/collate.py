"""Batches of tokenized examples, padded with the tokenizer's pad token on its padding side (src.model's padding rule)."""

from __future__ import annotations

from transformers import DataCollatorWithPadding


def left_padding_positions(batch: dict, padding_side: str) -> dict:
    """Rows padded on the left get position ids that count from their first real token, as each would have alone: a
    model with absolute positions (GPT-2) would otherwise see each row shifted by its padding, and predict differently
    in another batch."""
    if padding_side == "left":
        batch["position_ids"] = (batch["attention_mask"].cumsum(-1) - 1).clamp(min=0)
    return batch


class PaddingCollator(DataCollatorWithPadding):
    def __call__(self, features: list[dict]) -> dict:
        return left_padding_positions(super().__call__(features), self.tokenizer.padding_side)
