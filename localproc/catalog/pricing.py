"""On-demand SageMaker Processing prices in USD per instance-hour, to estimate what a job costs.

Source: the Amazon SageMaker AI pricing page (https://aws.amazon.com/sagemaker/ai/pricing/,
"On-Demand Pricing", "Processing" tab) and the AWS Price List, whose figures that page shows. The
page fills its tables from a data file that could not be fetched from here, so each figure below
was taken from a public copy of those prices, found with the search tool on 2026-11-29
(``PRICES_DATE``). The copies date from December 2023 (the bill below) to 2026, so a figure may
predate a later AWS price change. Each row carries a tag saying what its source says:

- ``P``: the source names the Processing component itself — the Price List usage type
  ``USE1-Processing:<type>``, or a line of an AWS bill "per Processing <type> hour".
- ``S``: the source quotes the SageMaker on-demand price of the instance without naming the
  component (or names Training, Hosting or Studio). These are used as the Processing price because
  SageMaker charges one rate per instance type and region across components wherever both were
  seen: the Price List gives ``USE1-Host:ml.m5.large`` = ``USE1-Processing:ml.m5.large`` =
  $0.115, and an AWS bill for EU (Ireland), December 2023 (``Sample_Costs.md`` in
  aws-samples/sagemaker-ssh-helper) charges ml.m5.xlarge $0.257/h for Processing, Training,
  Hosting and Batch Transform alike. That is an inference from those observations; the pricing
  page itself was not seen to state it.

A figure is listed only when a public copy found quotes it as the SageMaker price of that type in
that region, or without naming a region; for us-east-1, copies for US East (Ohio) count too, as
SageMaker charged the same there for every type seen in both. Where copies disagree (several g4dn
and g5 sizes), the figure most of them give is used. Nothing is computed from EC2 prices or from a
family's ratios.

Not known, so ``price_per_hour`` raises ``LookupError`` for them:

- us-east-1: the m4, c4, p2, r5d, m6i, c6i, m7i, c7i, r7i, g6e and g7e families, ml.p5.4xlarge,
  ml.r5.12xlarge, ml.r5.24xlarge and ml.g6.8xlarge (no public copy of their price was found).
- eu-west-1: all but the nine types of the December 2023 bill.
- us-west-2, eu-central-1, ap-northeast-1 and every other region: no figures found.

Billing: SageMaker meters instance time per second, and no minimum charge for Processing was
found documented, so ``estimate_cost`` applies none. It covers instance time only: the ML
storage volume ($/GB-month), data transfer and S3 requests are billed separately and left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from localproc.catalog import instance_types as _catalog

PRICES_SOURCE: str = (
    "Amazon SageMaker AI pricing page, On-Demand, Processing tab "
    "(https://aws.amazon.com/sagemaker/ai/pricing/) and the AWS Price List, via public copies; "
    "see localproc.catalog.pricing for which figures are Processing-labelled"
)
PRICES_DATE: str = "2026-11-29"

_SECONDS_PER_HOUR = 3600.0

# One line per type: name, USD per instance-hour, tag (see the module docstring).
_US_EAST_1: tuple[tuple[str, float, str], ...] = (
    ("ml.t3.medium", 0.05, "P"),
    ("ml.t3.large", 0.10, "S"),
    ("ml.t3.xlarge", 0.20, "S"),
    ("ml.t3.2xlarge", 0.399, "S"),
    ("ml.m5.large", 0.115, "P"),
    ("ml.m5.xlarge", 0.23, "P"),
    ("ml.m5.2xlarge", 0.461, "S"),
    ("ml.m5.4xlarge", 0.922, "S"),
    ("ml.m5.12xlarge", 2.765, "S"),
    ("ml.m5.24xlarge", 5.53, "S"),
    ("ml.c5.xlarge", 0.204, "S"),
    ("ml.c5.2xlarge", 0.408, "S"),
    ("ml.c5.4xlarge", 0.816, "S"),
    ("ml.c5.9xlarge", 1.836, "S"),
    ("ml.c5.18xlarge", 3.672, "S"),
    ("ml.r5.large", 0.151, "S"),
    ("ml.r5.xlarge", 0.302, "S"),
    ("ml.r5.2xlarge", 0.605, "S"),
    ("ml.r5.4xlarge", 1.21, "S"),
    ("ml.r5.8xlarge", 2.419, "S"),
    ("ml.r5.16xlarge", 4.838, "S"),
    ("ml.g4dn.xlarge", 0.736, "S"),
    ("ml.g4dn.2xlarge", 0.94, "S"),
    ("ml.g4dn.4xlarge", 1.505, "S"),
    ("ml.g4dn.8xlarge", 2.72, "S"),
    ("ml.g4dn.12xlarge", 4.89, "S"),
    ("ml.g4dn.16xlarge", 5.44, "S"),
    ("ml.g5.xlarge", 1.408, "S"),
    ("ml.g5.2xlarge", 1.515, "S"),
    ("ml.g5.4xlarge", 2.03, "S"),
    ("ml.g5.8xlarge", 3.06, "S"),
    ("ml.g5.16xlarge", 5.12, "S"),
    ("ml.g5.12xlarge", 7.09, "S"),
    ("ml.g5.24xlarge", 10.18, "S"),
    ("ml.g5.48xlarge", 20.36, "S"),
    ("ml.g6.xlarge", 1.127, "S"),
    ("ml.g6.2xlarge", 1.222, "S"),
    ("ml.g6.4xlarge", 1.654, "S"),
    ("ml.g6.12xlarge", 5.752, "S"),
    ("ml.g6.16xlarge", 4.246, "S"),
    ("ml.g6.24xlarge", 8.344, "S"),
    ("ml.g6.48xlarge", 16.688, "S"),
    ("ml.p3.2xlarge", 3.825, "S"),
    ("ml.p3.8xlarge", 14.688, "S"),
    ("ml.p3.16xlarge", 28.152, "S"),
)

# The AWS bill for EU (Ireland), December 2023; the component its line names is in the comment.
_EU_WEST_1: tuple[tuple[str, float, str], ...] = (
    ("ml.t3.medium", 0.055, "S"),  # Notebook and Studio-Notebook
    ("ml.m5.large", 0.128, "S"),  # Studio-Notebook
    ("ml.m5.xlarge", 0.257, "P"),  # Processing (also Training, Hosting, Batch Transform)
    ("ml.g4dn.xlarge", 0.822, "S"),  # Training
    ("ml.g4dn.4xlarge", 1.678, "S"),  # Hosting
    ("ml.g4dn.12xlarge", 5.453, "S"),  # Hosting
    ("ml.g5.xlarge", 1.57, "S"),  # Training
    ("ml.g5.12xlarge", 7.91, "S"),  # Hosting
    ("ml.p3.2xlarge", 4.131, "S"),  # Training
)

_TABLES: Mapping[str, tuple[tuple[str, float, str], ...]] = {
    "us-east-1": _US_EAST_1,
    "eu-west-1": _EU_WEST_1,
}

#: USD per instance-hour by region, then instance type. Read-only: shared by every caller.
PRICES: Mapping[str, Mapping[str, float]] = MappingProxyType(
    {
        region: MappingProxyType({name: price for name, price, _tag in rows})
        for region, rows in _TABLES.items()
    }
)

#: The types whose figure names the Processing component itself ("P"), by region.
PROCESSING_LABELLED: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        region: frozenset(name for name, _price, tag in rows if tag == "P")
        for region, rows in _TABLES.items()
    }
)


def price_per_hour(instance_type: str, region: str) -> float:
    """On-demand Processing price of one ``instance_type`` instance for an hour in ``region``.

    KeyError (a LookupError) if the name is not a Processing instance type; LookupError if no
    price is known for it in that region — an estimate is better absent than made up.
    """
    _catalog.instance_type(instance_type)  # an unknown name is a different mistake: say so first
    regional = PRICES.get(region)
    if regional is None:
        raise LookupError(
            f"no SageMaker Processing price is known for {instance_type} in {region}: "
            f"localproc has prices for {', '.join(sorted(PRICES))} only "
            f"(taken {PRICES_DATE})"
        )
    try:
        return regional[instance_type]
    except KeyError:
        raise LookupError(
            f"no SageMaker Processing price is known for {instance_type} in {region} "
            f"(prices taken {PRICES_DATE}; see https://aws.amazon.com/sagemaker/ai/pricing/)"
        ) from None


def estimate_cost(instance_type: str, instance_count: int, seconds: float, region: str) -> float:
    """USD for ``instance_count`` instances running ``seconds``: count × hourly price × s / 3600.

    Per-second, with no minimum charge (none was found documented); instance time only.
    """
    if instance_count < 1:
        raise ValueError(f"instance_count must be at least 1, got {instance_count}")
    if seconds < 0:
        raise ValueError(f"seconds must not be negative, got {seconds}")
    return instance_count * price_per_hour(instance_type, region) * seconds / _SECONDS_PER_HOUR
