"""The SageMaker cost estimate that plan and describe show: its arithmetic, and what it says
without a known price."""

from __future__ import annotations

import pytest

from localproc.catalog.cost import cost_estimate


@pytest.mark.parametrize(
    ("type_name", "count", "seconds", "expected"),
    [
        ("ml.m5.xlarge", 2, 1800, 2 * 0.23 * 0.5),
        ("ml.t3.medium", 1, 3600, 0.05),
        ("ml.m5.large", 4, 90, 4 * 0.115 * 90 / 3600),
    ],
)
def test_cost_arithmetic(type_name: str, count: int, seconds: int, expected: float) -> None:
    estimate = cost_estimate(type_name, count, seconds, "us-east-1")
    assert estimate["UpToUsd"] == pytest.approx(expected)


def test_cost_without_a_known_price_says_so() -> None:
    estimate = cost_estimate("ml.m5.xlarge", 1, 60, "ap-south-2")
    assert (
        "no SageMaker Processing price is known for ml.m5.xlarge in ap-south-2"
        in (estimate["Unavailable"])
    )
