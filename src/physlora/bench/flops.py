"""Estimated training FLOPs of a step and model FLOPs utilisation (MFU).

Every matrix multiply y = x W with W of shape (d_in, d_out) costs 2 * d_in * d_out FLOPs per token in
the forward pass. The backward pass computes the gradient of the activations (another 2 * d_in * d_out)
and, only for a trainable W, the gradient of W (2 * d_in * d_out more). So per token and weight:

- a frozen weight costs 4 FLOPs (forward 2, activation gradient 2): every base weight under LoRA;
- a trained weight costs 6 FLOPs: LoRA's A and B matrices, and every weight in full fine-tuning.

Training FLOPs = sum over weight groups of (tokens through the group) x (weights in the group) x 4 or 6.
Tokens are non-padding tokens, so padding counts as wasted work. Embedding lookups cost nothing. The
attention score products (Q K^T and the weighted sum of V) are left out: they add 12 * T * d_attn FLOPs
per token and layer, about 2% for T5-base at 50 tokens per example.

Which tokens pass through which weights:

- encoder-decoder models: encoder weights and the decoder's cross-attention key and value projections
  see the encoder (input) tokens. All other decoder weights and the output projection see the decoder
  (target) tokens, whose count equals the supervised tokens.
- decoder-only models: every layer processes all input tokens. The output projection counts only for the
  supervised tokens, the only positions whose logits the loss needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Last name components of the cross-attention key and value projections (T5, and BART-style models).
_CROSS_ATTENTION_KV = {
    ("EncDecAttention", "k"), ("EncDecAttention", "v"), ("encoder_attn", "k_proj"), ("encoder_attn", "v_proj"),
}


@dataclass(frozen=True)
class ParameterGroups:
    """Matrix-multiply weights counted by the tokens that pass through them.

    `input_*` weights see every non-padding input token; `target_*` weights see the supervised tokens.
    `*_lora` are the LoRA A and B weights attached to weights of that group.
    """

    input_weights: int
    target_weights: int
    input_lora: int = 0
    target_lora: int = 0


def parameter_groups(model: torch.nn.Module, lora_targets: list[str] | None = None, lora_r: int = 0) -> ParameterGroups:
    """Count the nn.Linear weights of a transformers model (without adapter) by group.

    `lora_targets` and `lora_r` give the LoRA adapter that would be attached: each nn.Linear whose last
    name component is in `lora_targets` gets r * (d_in + d_out) LoRA weights in its own group. The model
    may live on the meta device.
    """
    encoder_decoder = bool(getattr(model.config, "is_encoder_decoder", False))
    output_projection = model.get_output_embeddings()
    targets = set(lora_targets or [])
    counts = {"input_weights": 0, "target_weights": 0, "input_lora": 0, "target_lora": 0}
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear):
            continue
        parts = name.split(".")
        if encoder_decoder:
            in_input_group = parts[0] == "encoder" or tuple(parts[-2:]) in _CROSS_ATTENTION_KV
        else:
            in_input_group = module is not output_projection
        group = "input" if in_input_group else "target"
        counts[f"{group}_weights"] += module.in_features * module.out_features
        if parts[-1] in targets:
            counts[f"{group}_lora"] += lora_r * (module.in_features + module.out_features)
    return ParameterGroups(**counts)


def training_flops(groups: ParameterGroups, input_tokens: int, target_tokens: int, fine_tuning: str) -> float:
    """Estimated FLOPs of training on `input_tokens` and `target_tokens`: forward plus backward.

    `fine_tuning` is "lora" (base weights frozen: 4 per token and weight, LoRA weights 6) or "full"
    (every weight trained: 6 per token and weight; LoRA counts must then be 0).
    """
    if fine_tuning == "lora":
        base = 4 * (groups.input_weights * input_tokens + groups.target_weights * target_tokens)
        adapter = 6 * (groups.input_lora * input_tokens + groups.target_lora * target_tokens)
        return float(base + adapter)
    if fine_tuning == "full":
        if groups.input_lora or groups.target_lora:
            raise ValueError("full fine-tuning has no LoRA weights; count the groups without lora_targets")
        return float(6 * (groups.input_weights * input_tokens + groups.target_weights * target_tokens))
    raise ValueError(f"fine_tuning must be 'lora' or 'full', got {fine_tuning!r}")


def model_flops_utilisation(flops: float, seconds: float, peak_flops_per_s: float) -> float | None:
    """Achieved FLOP/s as a fraction of the peak; None when the time or the peak is not positive."""
    if seconds <= 0 or peak_flops_per_s <= 0:
        return None
    return flops / seconds / peak_flops_per_s
