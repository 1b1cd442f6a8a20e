"""What a job costs on SageMaker at on-demand prices: an upper bound for a plan, the actual figure
for a recorded run."""

from __future__ import annotations

from typing import Any

from localproc.catalog.pricing import PRICES_DATE, estimate_cost, price_per_hour


def cost_estimate(
    type_name: str, count: int, seconds: float | None, region: str, actual: bool = False
) -> dict[str, Any]:
    """On-demand SageMaker price: count × hourly price × seconds. For a plan, `seconds` is
    MaxRuntimeInSeconds (an upper bound); after a run, the run's duration."""
    try:
        hourly = price_per_hour(type_name, region)
    except LookupError as err:
        return {"Unavailable": str(err).strip("'\"")}
    estimate: dict[str, Any] = {
        "Region": region,
        "InstanceType": type_name,
        "InstanceCount": count,
        "PricePerInstanceHourUsd": hourly,
        "PricesTaken": PRICES_DATE,
    }
    if seconds is not None:
        key = "ActualUsd" if actual else "UpToUsd"
        estimate["Seconds"] = seconds
        estimate[key] = round(estimate_cost(type_name, count, seconds, region), 6)
    return estimate
