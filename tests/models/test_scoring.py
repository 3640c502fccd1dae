"""label_logprobs and mean_loss agree with transformers' own loss and ignore batching and padding."""

from __future__ import annotations

import pytest
import torch

from physlora.models.encoding import IGNORE_INDEX, build_prompt, collate, encode_example
from physlora.models.scoring import label_logprobs, mean_loss

PAIRS = [
    ("What is the SI unit of force?", "newton"),
    ("A 2 kg mass accelerates at 3 metres per second squared. What net force acts on it?", "6 newtons"),
    ("What is the bending of light entering glass called?", "refraction"),
    ("Which quantity is conserved in every collision?", "momentum"),
    ("What is heat transfer by a moving fluid called?", "convection, as in boiling water or warm air rising"),
    ("What is the unit of frequency?", "hertz"),
    ("What particle has no charge?", "neutron"),
    ("What colour of light has the longest wavelength?", "red"),
    ("What does a transformer change?", "the voltage of an alternating current"),
]
TEMPLATE = "Answer the physics question.\nQuestion: {question}\nAnswer:"


def _encode(bundle, pairs=PAIRS):
    return [encode_example(bundle.tokenizer, bundle.family, build_prompt(TEMPLATE, question), answer, 128, 32)
            for question, answer in pairs]


def _hf_inputs(bundle, batch):
    """Inputs for the model's own loss: transformers derives decoder inputs from labels for seq2seq."""
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"], "labels": batch["labels"]}


def test_label_logprobs_equal_transformers_loss(bundle):
    examples = _encode(bundle)
    batch = collate(examples, bundle.tokenizer.pad_token_id)
    with torch.no_grad():
        sums, counts = label_logprobs(bundle.model, bundle.family, batch)
        expected = bundle.model(**_hf_inputs(bundle, batch)).loss

    assert counts.tolist() == [example.supervised_tokens for example in examples]
    torch.testing.assert_close(-sums.sum() / counts.sum(), expected, rtol=1e-5, atol=1e-6)


def test_per_example_loss_unchanged_by_label_padding(bundle):
    examples = _encode(bundle)
    pad = bundle.tokenizer.pad_token_id
    with torch.no_grad():
        alone = [label_logprobs(bundle.model, bundle.family, collate([example], pad)) for example in examples[:3]]
        batch = collate(examples[:3], pad)
        wider = {key: value.clone() for key, value in batch.items()}
        extra = torch.full((3, 5), IGNORE_INDEX)
        wider["labels"] = torch.cat([batch["labels"], extra], dim=1)
        if bundle.family == "causal":
            wider["input_ids"] = torch.cat([batch["input_ids"], torch.full((3, 5), pad)], dim=1)
            wider["attention_mask"] = torch.cat([batch["attention_mask"], torch.zeros(3, 5, dtype=torch.long)], dim=1)
        batched_sums, batched_counts = label_logprobs(bundle.model, bundle.family, batch)
        wider_sums, wider_counts = label_logprobs(bundle.model, bundle.family, wider)

    for row, (sums, counts) in enumerate(alone):
        assert batched_counts[row] == counts[0] == wider_counts[row]
        torch.testing.assert_close(batched_sums[row], sums[0], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(wider_sums[row], sums[0], rtol=1e-5, atol=1e-5)


def test_mean_loss_independent_of_batch_size(bundle):
    examples = _encode(bundle)
    pad = bundle.tokenizer.pad_token_id
    loss_1, tokens_1 = mean_loss(bundle.model, bundle.family, examples, 1, pad)
    loss_7, tokens_7 = mean_loss(bundle.model, bundle.family, examples, 7, pad)

    assert tokens_1 == tokens_7 == sum(example.supervised_tokens for example in examples)
    assert loss_7 == pytest.approx(loss_1, rel=1e-6)
    assert loss_1 > 0


def test_mean_loss_weights_tokens_not_examples(bundle):
    examples = _encode(bundle)[:2]
    pad = bundle.tokenizer.pad_token_id
    with torch.no_grad():
        per_example = [label_logprobs(bundle.model, bundle.family, collate([example], pad)) for example in examples]
    total_nll = -sum(sums.item() for sums, _ in per_example)
    total_tokens = sum(counts.item() for _, counts in per_example)
    loss, tokens = mean_loss(bundle.model, bundle.family, examples, 2, pad)
    assert tokens == total_tokens
    assert loss == pytest.approx(total_nll / total_tokens, rel=1e-6)


def test_mean_loss_restores_train_mode(bundle):
    bundle.model.train()
    try:
        mean_loss(bundle.model, bundle.family, _encode(bundle)[:2], 2, bundle.tokenizer.pad_token_id)
        assert bundle.model.training
    finally:
        bundle.model.eval()
