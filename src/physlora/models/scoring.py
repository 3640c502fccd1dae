"""Per-example log-likelihood of the labels: the one forward pass behind training loss, validation
loss and multiple-choice scoring.

For decoder-only models the vocabulary projection is applied only at supervised positions. With
Gemma's 262,144-token vocabulary the full (B, T, V) logits tensor is the largest single cost of a
training step, and prompt positions never contribute to the loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from physlora.models.architectures import Family
from physlora.models.encoding import IGNORE_INDEX


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The transformers model inside a PEFT wrapper (LoRA layers stay injected), or the model itself."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def label_logprobs(model: torch.nn.Module, family: Family, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed log-probability of each example's labels and its number of supervised tokens.

    Returns two tensors of shape (B,): float32 sums (negative numbers) and int64 token counts.
    """
    if family == "seq2seq":
        return _seq2seq_logprobs(model, batch)
    return _causal_logprobs(model, batch)


def _seq2seq_logprobs(model, batch):
    labels = batch["labels"]  # (B, T_dec)
    outputs = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels)
    logits = outputs.logits.float()  # (B, T_dec, V)
    mask = labels != IGNORE_INDEX
    token_logprobs = -F.cross_entropy(
        logits.transpose(1, 2), labels.masked_fill(~mask, 0), reduction="none"
    )  # (B, T_dec)
    return (token_logprobs * mask).sum(dim=1), mask.sum(dim=1)


def _causal_logprobs(model, batch):
    inner = unwrap(model)
    labels = batch["labels"]  # (B, T)
    hidden = inner.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    # The state at position t predicts token t+1, so shift labels left by one.
    targets = labels[:, 1:]  # (B, T-1)
    mask = targets != IGNORE_INDEX
    rows = mask.nonzero(as_tuple=True)[0]  # (N,) example index of each supervised position
    selected = hidden[:, :-1][mask]  # (N, d)
    logits = inner.get_output_embeddings()(selected).float()  # (N, V)
    softcap = getattr(inner.config, "final_logit_softcapping", None)
    if softcap:
        logits = torch.tanh(logits / softcap) * softcap
    token_logprobs = -F.cross_entropy(logits, targets[mask], reduction="none")  # (N,)
    sums = torch.zeros(labels.shape[0], dtype=torch.float32, device=labels.device)
    sums.index_add_(0, rows, token_logprobs)
    return sums, mask.sum(dim=1)
