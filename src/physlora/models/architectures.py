"""Architecture families, named model shapes for random init, and per-architecture LoRA targets."""

from __future__ import annotations

from typing import Literal

Family = Literal["seq2seq", "causal"]

# Shapes of published checkpoints, so a randomly initialised model can have the exact architecture
# (and parameter count) of a model whose weights are not available offline. Values from the models'
# config.json files on the Hugging Face hub (google/flan-t5-small, google/flan-t5-base, google/gemma-3-270m).
NAMED_SHAPES: dict[str, dict] = {
    "flan-t5-small": {
        "d_model": 512, "d_ff": 1024, "d_kv": 64, "num_heads": 6, "num_layers": 8, "num_decoder_layers": 8,
        "feed_forward_proj": "gated-gelu", "tie_word_embeddings": False, "vocab_size": 32128,
    },
    "flan-t5-base": {
        "d_model": 768, "d_ff": 2048, "d_kv": 64, "num_heads": 12, "num_layers": 12, "num_decoder_layers": 12,
        "feed_forward_proj": "gated-gelu", "tie_word_embeddings": False, "vocab_size": 32128,
    },
    "gemma-3-270m": {
        "hidden_size": 640, "intermediate_size": 2048, "num_hidden_layers": 18, "num_attention_heads": 4,
        "num_key_value_heads": 1, "head_dim": 256, "vocab_size": 262144, "sliding_window": 512,
        "max_position_embeddings": 32768, "query_pre_attn_scalar": 256,
    },
}

# Small defaults for random init when no named shape applies: fast enough for unit tests on a CPU.
TINY_DEFAULTS: dict[str, dict] = {
    "t5": {"d_model": 64, "d_ff": 128, "d_kv": 16, "num_heads": 4, "num_layers": 2, "num_decoder_layers": 2},
    "gemma3": {
        "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 16, "sliding_window": 64, "max_position_embeddings": 1024,
        "query_pre_attn_scalar": 16, "layer_types": ["sliding_attention", "full_attention"],
    },
    "llama": {
        "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "max_position_embeddings": 1024,
    },
}

ARCHITECTURE_FAMILY: dict[str, Family] = {"t5": "seq2seq", "gemma3": "causal", "llama": "causal"}

DEFAULT_LORA_TARGETS: dict[Family, list[str]] = {
    "seq2seq": ["q", "v"],
    "causal": ["q_proj", "v_proj"],
}


def family_of(hf_config) -> Family:
    """Family of a transformers config: encoder-decoder models are seq2seq, everything else causal."""
    return "seq2seq" if getattr(hf_config, "is_encoder_decoder", False) else "causal"


def is_t5(hf_config) -> bool:
    return getattr(hf_config, "model_type", "") in {"t5", "mt5", "umt5", "longt5"}
