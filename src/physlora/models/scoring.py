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
from physlora.models.encoding import IGNORE_INDEX, Encoded, collate


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
    # Passing decoder inputs instead of labels keeps transformers from computing a second,
    # unused cross-entropy over the full (B, T_dec, V) logits.
    decoder_input_ids = unwrap(model).prepare_decoder_input_ids_from_labels(labels=labels)
    outputs = model(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        decoder_input_ids=decoder_input_ids,
        use_cache=False,
    )
    logits = outputs.logits.float()  # (B, T_dec, V)
    mask = labels != IGNORE_INDEX
    token_logprobs = -F.cross_entropy(
        logits.transpose(1, 2), labels.masked_fill(~mask, 0), reduction="none"
    )  # (B, T_dec)
    return (token_logprobs * mask).sum(dim=1), mask.sum(dim=1)


def _causal_logprobs(model, batch):
    inner = unwrap(model)
    labels = batch["labels"]  # (B, T)
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"], "use_cache": False}
    inputs.update(_prefix_inputs(model, batch))
    hidden = inner.model(**inputs).last_hidden_state  # (B, T, d)
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


def _prefix_inputs(model, batch) -> dict:
    """Build the trained key/value prefix and the widened attention mask of a prefix-tuned PEFT model, as
    PEFT's own forward builds them (peft 0.21). Other methods get none, because their layers are inside `inner`."""
    peft_config = getattr(model, "active_peft_config", None)
    if peft_config is None or not peft_config.is_prompt_learning:
        return {}
    batch_size, length = batch["input_ids"].shape
    tokens = peft_config.num_virtual_tokens
    mask = batch["attention_mask"]
    prefix_mask = torch.ones(batch_size, tokens, dtype=mask.dtype, device=mask.device)
    return {
        "attention_mask": torch.cat((prefix_mask, mask), dim=1),
        "past_key_values": model.get_prompt(batch_size, max_cache_len=length + tokens),
    }


@torch.no_grad()
def mean_loss(
    model: torch.nn.Module, family: Family, examples: list[Encoded], batch_size: int, pad_token_id: int,
    score=None,
) -> tuple[float, int]:
    """Compute the token-weighted mean negative log-likelihood of `examples` and their supervised tokens.

    Every supervised token has the same weight whatever batch it falls in, and the sums are kept in
    float64, so the result does not depend on `batch_size` beyond float32 rounding inside the model.
    Examples are batched in order of length to reduce padding. The model runs in eval mode (no
    dropout) and gets its previous mode back. Precision follows any autocast context of the caller.
    Returns NaN and 0 tokens for an empty list. `score(batch)` replaces `label_logprobs(model, family, batch)`
    when the model runs inside a training engine's wrapper (FSDP, DeepSpeed).
    """
    score = score or (lambda batch: label_logprobs(model, family, batch))
    device = next(model.parameters()).device
    order = sorted(range(len(examples)), key=lambda index: len(examples[index].input_ids))
    total_nll, total_tokens = 0.0, 0
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(order), batch_size):
            chosen = [examples[index] for index in order[start : start + batch_size]]
            batch = {key: value.to(device) for key, value in collate(chosen, pad_token_id).items()}
            sums, counts = score(batch)
            total_nll -= sums.double().sum().item()
            total_tokens += int(counts.sum().item())
    finally:
        model.train(was_training)
    return (total_nll / total_tokens if total_tokens else float("nan")), total_tokens
