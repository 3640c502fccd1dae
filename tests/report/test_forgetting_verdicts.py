"""Plain verdicts of the forgetting table: a change counts only when its interval excludes 0."""

from __future__ import annotations

import pytest

from physlora.report.continual import change_verdict


@pytest.mark.parametrize(
    ("difference", "split", "expected"),
    [
        ({"value": -0.1, "low": -0.2, "high": -0.01}, "previous", "forgetting"),
        ({"value": -0.1, "low": -0.2, "high": 0.05}, "previous", "no significant change"),
        ({"value": 0.1, "low": 0.02, "high": 0.2}, "previous", "improved"),
        ({"value": 0.1, "low": 0.02, "high": 0.2}, "new", "significant gain"),
        ({"value": -0.1, "low": -0.2, "high": -0.01}, "new", "significant loss"),
        ({"value": 0.1, "low": 0.02, "high": 0.2}, "new_vs_previous", "significant gain"),
        (None, "new", "n/a"),
    ],
)
def test_forgetting_verdicts(difference, split, expected):
    assert change_verdict(difference, split) == expected
