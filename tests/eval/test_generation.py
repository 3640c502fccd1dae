"""Greedy generation: explicit length limit, EOS handling, left padding for causal models."""

from __future__ import annotations

import pytest
import torch

from physlora.config.schema import EvaluationConfig
from physlora.eval.generation import generate_answers, reference_token_count, resolve_max_new_tokens

PROMPTS = [
    "Answer the physics question.\nQuestion: what is the unit of force?\nAnswer:",
    "Question: what?",
    "Answer the physics question.\nQuestion: a ball is dropped from a tower of height h; how long does it fall?\nAnswer:",
]
# transformers generates at most max_length=20 tokens when a caller passes no limit.
LIBRARY_DEFAULT_LENGTH = 20


def suppress_eos(model: torch.nn.Module, eos_id: int):
    def hook(module, inputs, output):
        output = output.clone()
        output[..., eos_id] = float("-inf")
        return output

    return model.get_output_embeddings().register_forward_hook(hook)


@pytest.mark.parametrize("bundle_name", ["t5_bundle", "llama_bundle"])
def test_generation_runs_to_limit_without_eos(bundle_name, request):
    bundle = request.getfixturevalue(bundle_name)
    limit = LIBRARY_DEFAULT_LENGTH + 7
    handle = suppress_eos(bundle.model, bundle.tokenizer.eos_token_id)
    try:
        answers = generate_answers(bundle.model, bundle.tokenizer, bundle.family, PROMPTS, limit, 64, batch_size=2)
    finally:
        handle.remove()
    assert len(answers) == len(PROMPTS)
    assert [answer.n_tokens for answer in answers] == [limit] * len(PROMPTS)
    assert not any(answer.stopped_at_eos for answer in answers)


def test_generation_stops_at_eos(t5_bundle):
    eos = t5_bundle.tokenizer.eos_token_id

    def force_eos(module, inputs, output):
        output = output.clone()
        output[..., eos] += 1000.0
        return output

    handle = t5_bundle.model.get_output_embeddings().register_forward_hook(force_eos)
    try:
        answers = generate_answers(t5_bundle.model, t5_bundle.tokenizer, "seq2seq", PROMPTS, 30, 64, batch_size=3)
    finally:
        handle.remove()
    assert all(answer.stopped_at_eos for answer in answers)
    assert [answer.n_tokens for answer in answers] == [1, 1, 1]
    assert [answer.text for answer in answers] == ["", "", ""]


def test_causal_batched_generation_matches_single(llama_bundle):
    # Left padding must not change what a prompt generates: batched and one-at-a-time outputs agree.
    bundle = llama_bundle
    batched = generate_answers(bundle.model, bundle.tokenizer, bundle.family, PROMPTS, 12, 64, batch_size=3)
    single = [generate_answers(bundle.model, bundle.tokenizer, bundle.family, [prompt], 12, 64, batch_size=1)[0]
              for prompt in PROMPTS]
    assert batched == single


def test_seq2seq_batched_generation_matches_single(t5_bundle):
    bundle = t5_bundle
    batched = generate_answers(bundle.model, bundle.tokenizer, bundle.family, PROMPTS, 12, 64, batch_size=3)
    single = [generate_answers(bundle.model, bundle.tokenizer, bundle.family, [prompt], 12, 64, batch_size=1)[0]
              for prompt in PROMPTS]
    assert batched == single


def test_max_new_tokens_from_longest_reference(t5_bundle):
    references = ["watt", "the speed of light in a vacuum is the same for every observer", "joule"]
    longest = max(len(t5_bundle.tokenizer(text, add_special_tokens=False).input_ids) for text in references)
    limit = resolve_max_new_tokens(EvaluationConfig(generation_margin=5), t5_bundle.tokenizer, "seq2seq", references)
    assert limit["longest_reference_tokens"] == longest
    assert limit["max_new_tokens"] == longest + 5
    assert limit["source"] == "longest_reference"


def test_max_new_tokens_from_config(t5_bundle):
    limit = resolve_max_new_tokens(EvaluationConfig(max_new_tokens=3), t5_bundle.tokenizer, "seq2seq", ["watt"])
    assert limit["max_new_tokens"] == 3
    assert limit["source"] == "config"


def test_causal_reference_counted_with_leading_space(llama_bundle):
    tokenizer = llama_bundle.tokenizer
    expected = len(tokenizer(" kinetic energy", add_special_tokens=False).input_ids)
    assert reference_token_count(tokenizer, "causal", "kinetic energy") == expected
