"""Answer comparison: normalisation, exact match, token F1, ROUGE-L, and multiple-choice picks.

Normalisation follows normalize_answer of the SQuAD v1.1 evaluation script: lowercase, drop ASCII
punctuation, drop the articles a, an and the, collapse whitespace. ROUGE-L uses the `rouge_score`
package without stemming.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from functools import lru_cache

_PUNCTUATION = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """Lowercase, remove punctuation, remove articles, collapse whitespace."""
    text = text.lower()
    text = "".join(character for character in text if character not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, reference: str) -> float:
    """Return 1.0 when both answers are equal after normalisation, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(reference))


def token_f1(prediction: str, reference: str) -> float:
    """Return the harmonic mean of word precision and recall after normalisation (multiset overlap).

    When either side normalises to no words, the score is 1.0 if both do and 0.0 otherwise.
    """
    predicted = normalize_answer(prediction).split()
    expected = normalize_answer(reference).split()
    if not predicted or not expected:
        return float(predicted == expected)
    overlap = sum((Counter(predicted) & Counter(expected)).values())
    if overlap == 0:
        return 0.0
    precision = overlap / len(predicted)
    recall = overlap / len(expected)
    return 2 * precision * recall / (precision + recall)


@lru_cache(maxsize=1)
def _rouge_scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def rouge_l(prediction: str, reference: str) -> float:
    """Return the ROUGE-L F-measure (longest common subsequence of words) from `rouge_score`.

    `rouge_score` lowercases and keeps only letters and digits; it returns 0.0 when either side has no words.
    """
    return float(_rouge_scorer().score(reference, prediction)["rougeL"].fmeasure)


def pick_choices(sum_logprobs: list[float], n_tokens: list[int]) -> dict[str, int]:
    """Return the index of the most likely choice by summed and by per-token mean log-probability.

    Ties go to the lowest index. Returns {"sum": index, "mean": index}.
    """
    if not sum_logprobs or len(sum_logprobs) != len(n_tokens):
        raise ValueError(f"need one token count per choice score, got {len(sum_logprobs)} scores and {len(n_tokens)} counts")
    means = [total / count if count else -math.inf for total, count in zip(sum_logprobs, n_tokens)]
    return {"sum": _argmax(sum_logprobs), "mean": _argmax(means)}


def _argmax(values: list[float]) -> int:
    best = 0
    for index, value in enumerate(values):
        if value > values[best]:
            best = index
    return best
