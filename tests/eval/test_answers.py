"""Answer normalisation, exact match, token F1, ROUGE-L and choice picks on hand-made cases."""

from __future__ import annotations

import pytest

from physlora.eval.answers import exact_match, normalize_answer, pick_choices, rouge_l, token_f1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The Newton!", "newton"),
        ("  an apple,  a   day ", "apple day"),
        ("Theory of the ant", "theory of ant"),
        ("9.8 m/s^2", "98 ms2"),
        ("", ""),
    ],
)
def test_normalize_answer(text, expected):
    assert normalize_answer(text) == expected


def test_exact_match_ignores_case_articles_punctuation():
    assert exact_match("The Joule.", "joule") == 1.0
    assert exact_match("a joule", "an joule!") == 1.0


def test_exact_match_rejects_different_words():
    assert exact_match("joules", "joule") == 0.0
    assert exact_match("joule per second", "joule") == 0.0


def test_token_f1_partial_overlap():
    # Normalised words: [speed, of, light] against [speed, of, sound]: 2 shared, P = R = 2/3.
    assert token_f1("the speed of light", "speed of sound") == pytest.approx(2 / 3)


def test_token_f1_counts_repeated_words_once_each():
    # Multiset overlap of [x, x, y] and [x, y, y] is {x, y}: P = R = 2/3.
    assert token_f1("x x y", "x y y") == pytest.approx(2 / 3)


def test_token_f1_unequal_lengths():
    # [newton] against [newton, meter]: P = 1, R = 1/2, F1 = 2/3.
    assert token_f1("Newton", "newton meter") == pytest.approx(2 / 3)


def test_token_f1_empty_answers():
    assert token_f1("", "") == 1.0
    assert token_f1("the", "newton") == 0.0
    assert token_f1("newton", "") == 0.0


def test_token_f1_no_overlap():
    assert token_f1("volt", "ampere") == 0.0


def test_rouge_l_identical_and_disjoint():
    assert rouge_l("kinetic energy", "kinetic energy") == pytest.approx(1.0)
    assert rouge_l("volt", "ampere") == 0.0


def test_rouge_l_subsequence():
    # Longest common subsequence "cat sat": P = 2/3, R = 2/4, F = 4/7.
    assert rouge_l("the cat sat", "a cat sat down") == pytest.approx(4 / 7)


def test_pick_choices_sum_and_mean_differ():
    # Choice 0: one token at -2. Choice 1: three tokens at -1 each (sum -3, mean -1).
    picks = pick_choices([-2.0, -3.0], [1, 3])
    assert picks["sum"] == 0
    assert picks["mean"] == 1


def test_pick_choices_tie_goes_to_first():
    assert pick_choices([-1.0, -1.0, -5.0], [1, 1, 1]) == {"sum": 0, "mean": 0}


def test_pick_choices_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="one token count per choice"):
        pick_choices([-1.0, -2.0], [1])
