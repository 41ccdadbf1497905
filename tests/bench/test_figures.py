"""The bench's percentiles: linear between closest ranks, the samples as the whole population."""

from __future__ import annotations

import math

import pytest

from bench.figures import distribution, percentile


@pytest.mark.parametrize(("values", "p", "expected"), [
    ([1, 2, 3, 4], 50, 2.5),
    ([1, 2, 3, 4], 90, 3.7),
    ([4, 3, 2, 1], 99, 3.97),  # order does not matter
    ([1, 2, 3, 4], 0, 1.0),
    ([1, 2, 3, 4], 100, 4.0),  # never beyond the largest sample
    ([1, 2], 99, 1.99),
    ([10], 99, 10.0),
    (list(range(1, 11)), 90, 9.1),
])
def test_percentile(values: list[float], p: int, expected: float) -> None:
    assert percentile(values, p) == pytest.approx(expected)


def test_no_values_is_nan() -> None:
    assert math.isnan(percentile([], 50))
    assert distribution([]) == {"count": 0, "p50": pytest.approx(math.nan, nan_ok=True),
                                "p90": pytest.approx(math.nan, nan_ok=True),
                                "p99": pytest.approx(math.nan, nan_ok=True),
                                "max": pytest.approx(math.nan, nan_ok=True)}


def test_distribution_scales_and_rounds() -> None:
    assert distribution([0.001, 0.002, 0.003, 0.004], scale=1000) == {
        "count": 4, "p50": 2.5, "p90": 3.7, "p99": 3.97, "max": 4.0}
