"""What differs between model families, in one table keyed by transformers' model_type (config.model_type).

A new family is one YAML in conf/model/ plus, here, one entry. Everything else is derived from the loaded model
for every family alike: the task head (every module outside the base model, src.finetune), the weights without
weight decay (biases and normalisation layers, src.loop) and the pad token (src.model).

This module imports nothing heavy: src.config and --help stay fast.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    # modules LoRA adapts by default: the attention's query and value projections, as in the LoRA paper, or the one
    # projection that computes query, key and value together where the family fuses them
    lora_targets: tuple[str, ...]
    # a decoder: its head reads the last real token, so it may be padded on the left (src.data then gives each row
    # position ids that start at its first real token); an encoder reads the first token and is padded on the right
    decoder: bool = False
    # position embeddings no token can use: RoBERTa's positions start after its padding index
    reserved_positions: int = 0


FAMILIES = {
    "bert": Family(("query", "value")),  # BERT, MiniLM
    "roberta": Family(("query", "value"), reserved_positions=2),
    "xlm-roberta": Family(("query", "value"), reserved_positions=2),
    "camembert": Family(("query", "value"), reserved_positions=2),
    "deberta-v2": Family(("query_proj", "value_proj")),  # DeBERTa-v2 and v3
    "distilbert": Family(("q_lin", "v_lin")),
    "modernbert": Family(("Wqkv",)),
    "gpt2": Family(("c_attn",), decoder=True),
    "llama": Family(("q_proj", "v_proj"), decoder=True),  # Llama, SmolLM
    "qwen2": Family(("q_proj", "v_proj"), decoder=True),
    "gpt_neox": Family(("query_key_value",), decoder=True),  # Pythia
}

UNKNOWN = Family(lora_targets=())  # a family without an entry: finetune.target_modules must be named, padding on the right
