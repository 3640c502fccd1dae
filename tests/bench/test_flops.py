"""FLOP formula and parameter grouping on hand-computed cases."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, LlamaConfig, T5Config

from physlora.bench.flops import ParameterGroups, model_flops_utilisation, parameter_groups, training_flops


def _meta_model(auto_class, config):
    with torch.device("meta"):
        return auto_class.from_config(config)


def test_formula_hand_numbers():
    groups = ParameterGroups(input_weights=100, target_weights=50, input_lora=10, target_lora=5)
    # LoRA: 4 * (100 * 7 + 50 * 2) + 6 * (10 * 7 + 5 * 2) = 3200 + 480
    assert training_flops(groups, input_tokens=7, target_tokens=2, fine_tuning="lora") == 3680
    full = ParameterGroups(input_weights=100, target_weights=50)
    # Full: 6 * (100 * 7 + 50 * 2)
    assert training_flops(full, input_tokens=7, target_tokens=2, fine_tuning="full") == 4800


def test_formula_rejects_bad_mode():
    with pytest.raises(ValueError, match="fine_tuning"):
        training_flops(ParameterGroups(1, 1), 1, 1, "prefix")
    with pytest.raises(ValueError, match="no LoRA weights"):
        training_flops(ParameterGroups(1, 1, 1, 0), 1, 1, "full")


def test_t5_groups_hand_counted():
    config = T5Config(d_model=8, d_ff=16, d_kv=2, num_heads=2, num_layers=1, num_decoder_layers=1,
                      vocab_size=32, feed_forward_proj="gated-gelu")
    groups = parameter_groups(_meta_model(AutoModelForSeq2SeqLM, config), ["q", "v"], lora_r=1)
    # Attention projections are 8x4 (q, k, v) and 4x8 (o): 32 weights each. Gated FFN: 3 x 128.
    # Input group: encoder attention 128 + FFN 384, plus the decoder's cross-attention k and v (64).
    assert groups.input_weights == 576
    # Target group: decoder self-attention 128, cross-attention q and o 64, FFN 384, output projection 8x32.
    assert groups.target_weights == 832
    # LoRA r=1 adds 8 + 4 = 12 per adapted projection: encoder q, v and cross-attention v see input tokens,
    # decoder self-attention q, v and cross-attention q see target tokens.
    assert groups.input_lora == 36
    assert groups.target_lora == 36
    assert training_flops(groups, 10, 3, "lora") == 10 * (4 * 576 + 6 * 36) + 3 * (4 * 832 + 6 * 36)
    assert training_flops(groups, 10, 3, "lora") == 35832


def test_causal_groups_hand_counted():
    config = LlamaConfig(hidden_size=8, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2,
                         num_key_value_heads=1, head_dim=4, vocab_size=32, tie_word_embeddings=False)
    groups = parameter_groups(_meta_model(AutoModelForCausalLM, config), ["q_proj", "v_proj"], lora_r=2)
    # q 8x8 (64), k 8x4 (32), v 8x4 (32), o 8x8 (64), gate/up/down 3 x 128: all tokens.
    assert groups.input_weights == 576
    assert groups.target_weights == 256  # output projection 8x32, supervised tokens only
    assert groups.input_lora == 2 * (8 + 8) + 2 * (8 + 4)
    assert groups.target_lora == 0
    assert training_flops(groups, 10, 3, "lora") == 29472
    no_lora = parameter_groups(_meta_model(AutoModelForCausalLM, config))
    assert training_flops(no_lora, 10, 3, "full") == 6 * (576 * 10 + 256 * 3)


def test_model_flops_utilisation():
    assert model_flops_utilisation(1e12, 10.0, 2e11) == 0.5
    assert model_flops_utilisation(1e12, 0.0, 2e11) is None
    assert model_flops_utilisation(1e12, 1.0, 0.0) is None
