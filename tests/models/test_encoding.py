"""Token ids and labels of one example for each family."""

from __future__ import annotations

from physlora.config.schema import ModelConfig
from physlora.models.encoding import IGNORE_INDEX, encode_example
from physlora.models.loading import load_tokenizer

PROMPT = "Answer the physics question.\nQuestion: What is the SI unit of force?\nAnswer:"


def _tokenizer(t5_tokenizer_path):
    return load_tokenizer(ModelConfig(tokenizer=str(t5_tokenizer_path)))


def test_causal_labels_mask_the_prompt(t5_tokenizer_path):
    tokenizer = _tokenizer(t5_tokenizer_path)
    encoded = encode_example(tokenizer, "causal", PROMPT, "newton", 128, 32)
    prompt_ids = tokenizer(PROMPT, add_special_tokens=False).input_ids
    answer_ids = tokenizer(" newton", add_special_tokens=False).input_ids + [tokenizer.eos_token_id]

    assert len(encoded.labels) == len(encoded.input_ids)
    assert encoded.input_ids[: len(prompt_ids)] == prompt_ids
    assert encoded.labels[: len(prompt_ids)] == [IGNORE_INDEX] * len(prompt_ids)
    assert encoded.labels[len(prompt_ids):] == answer_ids
    assert encoded.supervised_tokens == len(answer_ids)


def test_seq2seq_labels_are_the_answer(t5_tokenizer_path):
    tokenizer = _tokenizer(t5_tokenizer_path)
    encoded = encode_example(tokenizer, "seq2seq", PROMPT, "newton", 128, 32)
    assert encoded.input_ids == tokenizer(PROMPT, add_special_tokens=False).input_ids + [tokenizer.eos_token_id]
    assert encoded.labels == tokenizer("newton", add_special_tokens=False).input_ids + [tokenizer.eos_token_id]


def test_causal_truncation_keeps_the_answer(t5_tokenizer_path):
    tokenizer = _tokenizer(t5_tokenizer_path)
    encoded = encode_example(tokenizer, "causal", PROMPT * 10, "newton", 32, 8)
    assert len(encoded.input_ids) <= 32
    assert encoded.prompt_truncated
    assert encoded.labels[-1] == tokenizer.eos_token_id
    assert encoded.supervised_tokens == len(tokenizer(" newton", add_special_tokens=False).input_ids) + 1
