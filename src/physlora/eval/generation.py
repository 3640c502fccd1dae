"""Batched greedy generation with an explicit length limit, for free-form answer quality.

The limit is always passed to `generate` (never a transformers default such as max_length=20), and
greedy decoding is requested explicitly, so a model's own generation config cannot switch on sampling.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from physlora.config.schema import EvaluationConfig
from physlora.models.architectures import Family
from physlora.models.encoding import encode_prompt


@dataclass(frozen=True)
class Generated:
    """One generated answer.

    `n_tokens` counts the new tokens up to and including the first EOS; it equals the limit when the
    model never produced EOS.
    """

    text: str
    n_tokens: int
    stopped_at_eos: bool


def reference_token_count(tokenizer, family: Family, answer: str) -> int:
    """Tokens of an answer as the model would generate it (without EOS), using the training convention."""
    text = answer if family == "seq2seq" else " " + answer
    return len(tokenizer(text, add_special_tokens=False).input_ids)


def resolve_max_new_tokens(evaluation: EvaluationConfig, tokenizer, family: Family, references: list[str]) -> dict:
    """Generation limit: evaluation.max_new_tokens, else the longest reference in tokens plus the margin.

    Returns {"max_new_tokens", "source" ("config" or "longest_reference"), "longest_reference_tokens",
    "generation_margin"}.
    """
    longest = max((reference_token_count(tokenizer, family, text) for text in references), default=0)
    if evaluation.max_new_tokens is not None:
        limit, source = evaluation.max_new_tokens, "config"
    else:
        limit, source = max(1, longest + evaluation.generation_margin), "longest_reference"
    return {
        "max_new_tokens": limit,
        "source": source,
        "longest_reference_tokens": longest,
        "generation_margin": evaluation.generation_margin,
    }


def _pad_prompts(prompt_ids: list[list[int]], pad_id: int, left: bool) -> dict[str, torch.Tensor]:
    width = max(len(ids) for ids in prompt_ids)
    input_ids = torch.full((len(prompt_ids), width), pad_id, dtype=torch.long)  # (B, T)
    attention_mask = torch.zeros((len(prompt_ids), width), dtype=torch.long)
    for row, ids in enumerate(prompt_ids):
        columns = slice(width - len(ids), width) if left else slice(0, len(ids))
        input_ids[row, columns] = torch.tensor(ids)
        attention_mask[row, columns] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def _decode_row(tokenizer, new_tokens: list[int]) -> Generated:
    eos = tokenizer.eos_token_id
    if eos in new_tokens:
        end = new_tokens.index(eos)
        answer_ids, n_tokens, stopped = new_tokens[:end], end + 1, True
    else:
        answer_ids, n_tokens, stopped = new_tokens, len(new_tokens), False
    text = tokenizer.decode(answer_ids, skip_special_tokens=True).strip()
    return Generated(text=text, n_tokens=n_tokens, stopped_at_eos=stopped)


def generate_answers(
    model: torch.nn.Module,
    tokenizer,
    family: Family,
    prompts: list[str],
    max_new_tokens: int,
    max_seq_length: int,
    batch_size: int,
    on_batch: Callable[[], None] | None = None,
) -> list[Generated]:
    """Greedy answers to `prompts`, in order, stopping at EOS or after `max_new_tokens` new tokens.

    Causal models get left padding so that every prompt ends at the same position and generation
    continues right after it. Seq2seq prompts are encoder inputs and are padded on the right.
    """
    device = next(model.parameters()).device
    encoded = [encode_prompt(tokenizer, family, prompt, max_seq_length) for prompt in prompts]
    results: list[Generated] = []
    for start in range(0, len(encoded), batch_size):
        batch = _pad_prompts(encoded[start : start + batch_size], tokenizer.pad_token_id, left=family == "causal")
        batch = {key: value.to(device) for key, value in batch.items()}
        with torch.inference_mode():
            sequences = model.generate(
                **batch,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                num_beams=1,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
            )
        # Seq2seq output starts with the decoder start token; causal output repeats the prompt.
        skip = 1 if family == "seq2seq" else batch["input_ids"].shape[1]
        for row in sequences[:, skip:].tolist():
            results.append(_decode_row(tokenizer, row))
        if on_batch is not None:
            on_batch()
    return results
