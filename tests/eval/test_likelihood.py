"""Loss and multiple-choice scoring on tiny random models."""

from __future__ import annotations

import pytest
import torch

from physlora.eval.answers import pick_choices
from physlora.eval.likelihood import Lengths, score_pairs

LENGTHS = Lengths(max_seq_length=64, max_target_length=16)
PROMPT = "Answer the physics question.\nQuestion: what is measured here?\nAnswer:"
# Each word is one token of the T5 tokenizer, with or without a leading space.
CHOICES = ["energy", "force", "mass", "heat"]


def boost_token(model: torch.nn.Module, token_id: int, amount: float):
    """Add `amount` to one vocabulary logit at every position, through a hook on the output projection."""

    def hook(module, inputs, output):
        output = output.clone()
        output[..., token_id] += amount
        return output

    return model.get_output_embeddings().register_forward_hook(hook)


def pairs_for(n: int) -> list[tuple[str, str]]:
    targets = ["newton", "the speed of light in a vacuum", "kinetic energy", "watt", "a sound wave in air", "joule"]
    return [(f"Question {index}: {'long ' * (index % 4)}what is it?\nAnswer:", targets[index % len(targets)])
            for index in range(n)]


def token_weighted_loss(scores) -> float:
    return -sum(scores.sum_logprob) / sum(scores.n_tokens)


@pytest.mark.parametrize("bundle_name", ["t5_bundle", "llama_bundle"])
def test_loss_independent_of_batch_size(bundle_name, request):
    bundle = request.getfixturevalue(bundle_name)
    pairs = pairs_for(7)
    results = [score_pairs(bundle.model, bundle.tokenizer, bundle.family, pairs, LENGTHS, size) for size in (1, 3, 16)]
    reference = results[0]
    for scores in results[1:]:
        assert scores.n_tokens == reference.n_tokens
        assert scores.sum_logprob == pytest.approx(reference.sum_logprob, rel=1e-5, abs=1e-4)
        assert token_weighted_loss(scores) == pytest.approx(token_weighted_loss(reference), rel=1e-6)


def test_loss_weights_tokens_not_items(t5_bundle):
    # A one-token target and a long target: the mean over tokens differs from the mean of per-item means.
    pairs = [(PROMPT, "watt"), (PROMPT, "the speed of light in a vacuum is constant")]
    scores = score_pairs(t5_bundle.model, t5_bundle.tokenizer, t5_bundle.family, pairs, LENGTHS, 2)
    assert scores.n_tokens[0] < scores.n_tokens[1]
    per_item_means = [-total / count for total, count in zip(scores.sum_logprob, scores.n_tokens)]
    expected = -(scores.sum_logprob[0] + scores.sum_logprob[1]) / (scores.n_tokens[0] + scores.n_tokens[1])
    assert token_weighted_loss(scores) == pytest.approx(expected)
    assert token_weighted_loss(scores) != pytest.approx(sum(per_item_means) / 2)


@pytest.mark.parametrize("bundle_name", ["t5_bundle", "llama_bundle"])
@pytest.mark.parametrize("favoured", [0, 2, 3])
def test_choice_scoring_picks_forced_choice(bundle_name, favoured, request):
    bundle = request.getfixturevalue(bundle_name)
    tokenizer = bundle.tokenizer
    word_ids = [tokenizer(word, add_special_tokens=False).input_ids for word in CHOICES]
    assert all(len(ids) == 1 for ids in word_ids), word_ids
    handle = boost_token(bundle.model, word_ids[favoured][0], 30.0)
    try:
        pairs = [(PROMPT, choice) for choice in CHOICES]
        scores = score_pairs(bundle.model, tokenizer, bundle.family, pairs, LENGTHS, batch_size=3)
    finally:
        handle.remove()
    picks = pick_choices(scores.sum_logprob, scores.n_tokens)
    assert picks["sum"] == favoured
    assert picks["mean"] == favoured
    assert max(scores.sum_logprob) == scores.sum_logprob[favoured]


def test_choice_scores_include_eos(t5_bundle):
    # Every target ends with EOS, so a one-word choice has two scored tokens.
    pairs = [(PROMPT, "force")]
    scores = score_pairs(t5_bundle.model, t5_bundle.tokenizer, t5_bundle.family, pairs, LENGTHS, 1)
    assert scores.n_tokens == [2]
    assert scores.sum_logprob[0] < 0
