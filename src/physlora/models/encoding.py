"""Turn (prompt, target) pairs into token ids and labels per family, and pad them into batches.

Labels use -100 (PyTorch's cross-entropy ignore index) wherever no loss is taken: padding, and for
decoder-only models the prompt. For seq2seq models the labels are the decoder targets and the model
derives the decoder inputs by shifting them right.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from physlora.models.architectures import Family

IGNORE_INDEX = -100


@dataclass(frozen=True)
class Encoded:
    """One tokenised example. `input_ids` is the encoder input (seq2seq) or prompt + answer (causal)."""

    input_ids: list[int]
    labels: list[int]
    prompt_truncated: bool
    target_truncated: bool

    @property
    def supervised_tokens(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE_INDEX)


def build_prompt(template: str, question: str) -> str:
    return template.replace("{question}", question)


def encode_example(
    tokenizer, family: Family, prompt: str, target: str, max_seq_length: int, max_target_length: int
) -> Encoded:
    """Tokenise one example; truncation keeps the answer and shortens the prompt from the left."""
    eos = tokenizer.eos_token_id
    target_ids = tokenizer(target if family == "seq2seq" else " " + target, add_special_tokens=False).input_ids
    target_truncated = len(target_ids) > max_target_length - 1
    target_ids = target_ids[: max_target_length - 1] + [eos]

    prompt_ids = tokenizer(prompt, add_special_tokens=False).input_ids
    if family == "seq2seq":
        budget = max_seq_length - 1
        prompt_truncated = len(prompt_ids) > budget
        input_ids = prompt_ids[-budget:] + [eos] if prompt_truncated else prompt_ids + [eos]
        return Encoded(input_ids, target_ids, prompt_truncated, target_truncated)

    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    budget = max(1, max_seq_length - len(target_ids) - len(bos))
    prompt_truncated = len(prompt_ids) > budget
    prompt_ids = bos + (prompt_ids[-budget:] if prompt_truncated else prompt_ids)
    labels = [IGNORE_INDEX] * len(prompt_ids) + target_ids
    return Encoded(prompt_ids + target_ids, labels, prompt_truncated, target_truncated)


def encode_prompt(tokenizer, family: Family, prompt: str, max_seq_length: int) -> list[int]:
    """Token ids of a prompt alone, as fed to generation (with EOS for seq2seq, BOS for causal)."""
    prompt_ids = tokenizer(prompt, add_special_tokens=False).input_ids
    if family == "seq2seq":
        return prompt_ids[-(max_seq_length - 1):] + [tokenizer.eos_token_id]
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    return bos + prompt_ids[-(max_seq_length - len(bos)):]


def collate(examples: list[Encoded], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Pad a list of examples to the longest one: inputs with the pad id, labels with -100.

    Returns input_ids and attention_mask of shape (B, T_in) and labels of shape (B, T_label), where
    T_label equals T_in for causal models and is the longest target for seq2seq models.
    """
    input_width = max(len(example.input_ids) for example in examples)
    label_width = max(len(example.labels) for example in examples)
    input_ids = torch.full((len(examples), input_width), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(examples), input_width), dtype=torch.long)
    labels = torch.full((len(examples), label_width), IGNORE_INDEX, dtype=torch.long)
    for row, example in enumerate(examples):
        input_ids[row, : len(example.input_ids)] = torch.tensor(example.input_ids)
        attention_mask[row, : len(example.input_ids)] = 1
        labels[row, : len(example.labels)] = torch.tensor(example.labels)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
