"""The instance-type catalog and the Processing price table: complete against botocore's model,
right on well-known figures, and honest about what they do not know."""

from __future__ import annotations

import math

import pytest

from localproc.catalog import pricing
from localproc.catalog.instance_types import (
    INSTANCE_TYPES,
    InstanceType,
    family_members,
    instance_type,
    smallest_fitting,
)
from localproc.catalog.pricing import PRICES, estimate_cost, price_per_hour
from localproc.payload.service_model import sagemaker_model

GIB = 1024**3


def processing_instance_types() -> list[str]:
    return list(sagemaker_model().shape_for("ProcessingInstanceType").enum)


# Types whose us-east-1 Processing price no public source gave (see localproc.catalog.pricing).
# Listed by name so that a type botocore adds later, with no price, still fails the test below.
US_EAST_1_UNPRICED = frozenset(
    [
        "ml.m4.xlarge",
        "ml.m4.2xlarge",
        "ml.m4.4xlarge",
        "ml.m4.10xlarge",
        "ml.m4.16xlarge",
        "ml.c4.xlarge",
        "ml.c4.2xlarge",
        "ml.c4.4xlarge",
        "ml.c4.8xlarge",
        "ml.p2.xlarge",
        "ml.p2.8xlarge",
        "ml.p2.16xlarge",
        "ml.r5.12xlarge",
        "ml.r5.24xlarge",
        "ml.r5d.large",
        "ml.r5d.xlarge",
        "ml.r5d.2xlarge",
        "ml.r5d.4xlarge",
        "ml.r5d.8xlarge",
        "ml.r5d.12xlarge",
        "ml.r5d.16xlarge",
        "ml.r5d.24xlarge",
        "ml.g6.8xlarge",
        "ml.g6e.xlarge",
        "ml.g6e.2xlarge",
        "ml.g6e.4xlarge",
        "ml.g6e.8xlarge",
        "ml.g6e.12xlarge",
        "ml.g6e.16xlarge",
        "ml.g6e.24xlarge",
        "ml.g6e.48xlarge",
        "ml.m6i.large",
        "ml.m6i.xlarge",
        "ml.m6i.2xlarge",
        "ml.m6i.4xlarge",
        "ml.m6i.8xlarge",
        "ml.m6i.12xlarge",
        "ml.m6i.16xlarge",
        "ml.m6i.24xlarge",
        "ml.m6i.32xlarge",
        "ml.c6i.xlarge",
        "ml.c6i.2xlarge",
        "ml.c6i.4xlarge",
        "ml.c6i.8xlarge",
        "ml.c6i.12xlarge",
        "ml.c6i.16xlarge",
        "ml.c6i.24xlarge",
        "ml.c6i.32xlarge",
        "ml.m7i.large",
        "ml.m7i.xlarge",
        "ml.m7i.2xlarge",
        "ml.m7i.4xlarge",
        "ml.m7i.8xlarge",
        "ml.m7i.12xlarge",
        "ml.m7i.16xlarge",
        "ml.m7i.24xlarge",
        "ml.m7i.48xlarge",
        "ml.c7i.large",
        "ml.c7i.xlarge",
        "ml.c7i.2xlarge",
        "ml.c7i.4xlarge",
        "ml.c7i.8xlarge",
        "ml.c7i.12xlarge",
        "ml.c7i.16xlarge",
        "ml.c7i.24xlarge",
        "ml.c7i.48xlarge",
        "ml.r7i.large",
        "ml.r7i.xlarge",
        "ml.r7i.2xlarge",
        "ml.r7i.4xlarge",
        "ml.r7i.8xlarge",
        "ml.r7i.12xlarge",
        "ml.r7i.16xlarge",
        "ml.r7i.24xlarge",
        "ml.r7i.48xlarge",
        "ml.p5.4xlarge",
        "ml.g7e.2xlarge",
        "ml.g7e.4xlarge",
        "ml.g7e.8xlarge",
        "ml.g7e.12xlarge",
        "ml.g7e.24xlarge",
        "ml.g7e.48xlarge",
    ]
)


# --- completeness against botocore ----------------------------------------------------------


def test_catalog_has_every_processing_instance_type_in_botocore() -> None:
    missing = [name for name in processing_instance_types() if name not in INSTANCE_TYPES]
    assert missing == [], f"add these to localproc/spec/instance_types.py: {missing}"


def test_catalog_has_nothing_botocore_does_not_list() -> None:
    extra = sorted(set(INSTANCE_TYPES) - set(processing_instance_types()))
    assert extra == []


def test_us_east_1_has_a_price_for_every_type_but_the_documented_gaps() -> None:
    unpriced = sorted(
        name
        for name in processing_instance_types()
        if name not in PRICES["us-east-1"] and name not in US_EAST_1_UNPRICED
    )
    assert unpriced == [], f"no us-east-1 price and not in the allow-list: {unpriced}"


def test_the_allow_list_holds_only_types_that_really_lack_a_price() -> None:
    # When a price is found, the type must leave the allow-list, so the list stays the truth.
    assert sorted(US_EAST_1_UNPRICED & set(PRICES["us-east-1"])) == []
    assert sorted(US_EAST_1_UNPRICED - set(INSTANCE_TYPES)) == []


def test_every_priced_type_is_a_catalogued_type_with_a_plausible_price() -> None:
    for region, table in PRICES.items():
        for name, price in table.items():
            assert name in INSTANCE_TYPES, (region, name)
            assert 0.01 < price < 200, (region, name, price)


def test_processing_labelled_figures_are_in_the_table() -> None:
    for region, names in pricing.PROCESSING_LABELLED.items():
        assert names <= set(PRICES[region])
    assert {"ml.t3.medium", "ml.m5.large", "ml.m5.xlarge"} <= pricing.PROCESSING_LABELLED[
        "us-east-1"
    ]


def test_prices_say_where_and_when_they_come_from() -> None:
    assert "Processing" in pricing.PRICES_SOURCE
    assert "aws.amazon.com/sagemaker" in pricing.PRICES_SOURCE
    assert len(pricing.PRICES_DATE) == 10 and pricing.PRICES_DATE[4] == "-"


# --- well-known figures ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "vcpus", "memory_gib", "gpus", "gpu_kind"),
    [
        ("ml.t3.medium", 2, 4, 0, None),
        ("ml.m5.xlarge", 4, 16, 0, None),
        ("ml.c5.2xlarge", 8, 16, 0, None),
        ("ml.r5.large", 2, 16, 0, None),
        ("ml.g4dn.xlarge", 4, 16, 1, "NVIDIA T4"),
        ("ml.p3.2xlarge", 8, 61, 1, "NVIDIA V100"),
        ("ml.c4.xlarge", 4, 7.5, 0, None),
        ("ml.g5.12xlarge", 48, 192, 4, "NVIDIA A10G"),
        ("ml.g6e.xlarge", 4, 32, 1, "NVIDIA L40S"),
        ("ml.p5.4xlarge", 16, 256, 1, "NVIDIA H100"),
        ("ml.g7e.12xlarge", 48, 512, 2, "NVIDIA RTX PRO 6000 Blackwell Server Edition"),
        ("ml.r7i.48xlarge", 192, 1536, 0, None),
        ("ml.c7i.large", 2, 4, 0, None),
    ],
)
def test_well_known_figures(
    name: str, vcpus: int, memory_gib: float, gpus: int, gpu_kind: str | None
) -> None:
    assert instance_type(name) == InstanceType(name, vcpus, memory_gib, gpus, gpu_kind)


def test_cpu_types_have_no_gpu_and_gpu_types_name_theirs() -> None:
    for it in INSTANCE_TYPES.values():
        assert (it.gpus == 0) == (it.gpu_kind is None), it
        assert it.vcpus > 0 and it.memory_gib > 0, it


def test_family_and_memory_bytes() -> None:
    it = instance_type("ml.m5.xlarge")
    assert it.family == "ml.m5"
    assert it.memory_bytes == 16 * GIB
    assert instance_type("ml.g4dn.12xlarge").family == "ml.g4dn"
    assert instance_type("ml.c4.xlarge").memory_bytes == 7 * GIB + GIB // 2


def test_instance_types_are_immutable() -> None:
    it = instance_type("ml.m5.large")
    with pytest.raises(AttributeError):
        it.vcpus = 64  # type: ignore[misc]
    with pytest.raises(TypeError):
        INSTANCE_TYPES["ml.m5.large"] = it  # type: ignore[index]


def test_unknown_instance_type_is_a_key_error_that_suggests_the_near_name() -> None:
    with pytest.raises(KeyError, match=r"unknown instance type 'ml\.m5\.xlarg'.*ml\.m5\.xlarge"):
        instance_type("ml.m5.xlarg")
    with pytest.raises(KeyError, match="not a SageMaker Processing instance type"):
        instance_type("m5.xlarge-but-not-really")


# --- family_members ----------------------------------------------------------------------------


def test_family_members_smallest_first() -> None:
    assert [it.name for it in family_members("ml.m5")] == [
        "ml.m5.large",
        "ml.m5.xlarge",
        "ml.m5.2xlarge",
        "ml.m5.4xlarge",
        "ml.m5.12xlarge",
        "ml.m5.24xlarge",
    ]


def test_family_members_orders_by_memory_then_vcpus_not_by_name_or_table_order() -> None:
    # botocore lists g5.16xlarge before g5.12xlarge; 12xlarge (192 GiB) is the smaller one.
    names = [it.name for it in family_members("ml.g5")]
    assert names.index("ml.g5.12xlarge") < names.index("ml.g5.16xlarge")
    assert names == [
        "ml.g5.xlarge",
        "ml.g5.2xlarge",
        "ml.g5.4xlarge",
        "ml.g5.8xlarge",
        "ml.g5.12xlarge",
        "ml.g5.16xlarge",
        "ml.g5.24xlarge",
        "ml.g5.48xlarge",
    ]
    # t3.medium and t3.large share 2 vCPUs; memory decides.
    assert [it.name for it in family_members("ml.t3")][:2] == ["ml.t3.medium", "ml.t3.large"]


def test_every_family_is_sorted_and_covers_the_catalog() -> None:
    families = {it.family for it in INSTANCE_TYPES.values()}
    seen = 0
    for family in families:
        members = family_members(family)
        keys = [(it.memory_gib, it.vcpus) for it in members]
        assert keys == sorted(keys), family
        seen += len(members)
    assert seen == len(INSTANCE_TYPES)


def test_unknown_family_is_a_key_error() -> None:
    with pytest.raises(KeyError, match="unknown instance family 'ml.m9'"):
        family_members("ml.m9")
    with pytest.raises(KeyError, match="unknown instance family"):
        family_members("m5")  # the ml. prefix belongs to the family name


# --- smallest_fitting -------------------------------------------------------------------------


def test_smallest_fitting_by_memory() -> None:
    assert smallest_fitting("ml.m5", 0).name == "ml.m5.large"
    assert smallest_fitting("ml.m5", 8 * GIB).name == "ml.m5.large"  # exactly full fits
    assert smallest_fitting("ml.m5", 8 * GIB + 1).name == "ml.m5.xlarge"
    assert smallest_fitting("ml.m5", 20 * GIB).name == "ml.m5.2xlarge"
    assert smallest_fitting("ml.r5", 20 * GIB).name == "ml.r5.xlarge"
    assert smallest_fitting("ml.c4", 7 * GIB).name == "ml.c4.xlarge"
    assert smallest_fitting("ml.c4", 8 * GIB).name == "ml.c4.2xlarge"


def test_smallest_fitting_none_when_nothing_in_the_family_is_big_enough() -> None:
    assert smallest_fitting("ml.m5", 384 * GIB).name == "ml.m5.24xlarge"
    assert smallest_fitting("ml.m5", 384 * GIB + 1) is None
    assert smallest_fitting("ml.t3", 33 * GIB) is None


def test_smallest_fitting_also_needs_the_cores_the_run_kept_busy() -> None:
    # 2 GiB would fit an m5.large, but 1 h of CPU in 15 min kept 4 cores busy.
    assert smallest_fitting("ml.m5", 2 * GIB, cpu_seconds=3600, wall_seconds=900).name == (
        "ml.m5.xlarge"
    )
    # 4.5 cores on average needs 5, and the next size with at least 5 vCPUs has 8.
    assert smallest_fitting("ml.m5", GIB, cpu_seconds=450, wall_seconds=100).name == (
        "ml.m5.2xlarge"
    )
    # Single-threaded: memory decides.
    assert smallest_fitting("ml.m5", 10 * GIB, cpu_seconds=50, wall_seconds=100).name == (
        "ml.m5.xlarge"
    )
    # More cores than the family has.
    assert smallest_fitting("ml.t3", GIB, cpu_seconds=900, wall_seconds=100) is None
    # vCPUs and memory together: the r5 with 16 GiB has 2 vCPUs, 3 are needed.
    assert smallest_fitting("ml.r5", 16 * GIB, cpu_seconds=300, wall_seconds=100).name == (
        "ml.r5.xlarge"
    )
    assert math.ceil(450 / 100) == 5


def test_smallest_fitting_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="both"):
        smallest_fitting("ml.m5", GIB, cpu_seconds=10)
    with pytest.raises(ValueError, match="both"):
        smallest_fitting("ml.m5", GIB, wall_seconds=10)
    with pytest.raises(ValueError, match="wall_seconds must be positive"):
        smallest_fitting("ml.m5", GIB, cpu_seconds=10, wall_seconds=0)
    with pytest.raises(ValueError, match="negative"):
        smallest_fitting("ml.m5", -1)
    with pytest.raises(KeyError, match="unknown instance family"):
        smallest_fitting("ml.nope", GIB)


# --- prices and costs -------------------------------------------------------------------------


def test_well_known_us_east_1_prices() -> None:
    assert price_per_hour("ml.t3.medium", "us-east-1") == 0.05
    assert price_per_hour("ml.m5.xlarge", "us-east-1") == 0.23
    assert price_per_hour("ml.c5.2xlarge", "us-east-1") == 0.408
    assert price_per_hour("ml.g4dn.xlarge", "us-east-1") == 0.736
    assert price_per_hour("ml.p3.2xlarge", "us-east-1") == 3.825


def test_eu_west_1_processing_figure_from_the_aws_bill() -> None:
    assert price_per_hour("ml.m5.xlarge", "eu-west-1") == 0.257


def test_cost_of_two_m5_xlarge_for_half_an_hour() -> None:
    assert estimate_cost("ml.m5.xlarge", 2, 1800, "us-east-1") == pytest.approx(0.23)


@pytest.mark.parametrize(
    ("name", "count", "seconds", "expected"),
    [
        ("ml.t3.medium", 1, 3600, 0.05),
        ("ml.t3.medium", 1, 36, 0.0005),  # per second, no minimum
        ("ml.m5.large", 4, 7200, 4 * 0.115 * 2),
        ("ml.c5.18xlarge", 3, 600, 3 * 3.672 / 6),
        ("ml.p3.16xlarge", 2, 5400, 2 * 28.152 * 1.5),
        ("ml.g5.48xlarge", 1, 0, 0.0),
    ],
)
def test_cost_arithmetic(name: str, count: int, seconds: float, expected: float) -> None:
    assert estimate_cost(name, count, seconds, "us-east-1") == pytest.approx(expected)


def test_cost_scales_linearly_with_count_and_time() -> None:
    one = estimate_cost("ml.r5.2xlarge", 1, 1000, "us-east-1")
    assert estimate_cost("ml.r5.2xlarge", 3, 1000, "us-east-1") == pytest.approx(3 * one)
    assert estimate_cost("ml.r5.2xlarge", 1, 3000, "us-east-1") == pytest.approx(3 * one)


def test_estimate_cost_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="instance_count"):
        estimate_cost("ml.m5.xlarge", 0, 60, "us-east-1")
    with pytest.raises(ValueError, match="seconds"):
        estimate_cost("ml.m5.xlarge", 1, -1, "us-east-1")


def test_unknown_region_is_a_lookup_error_naming_type_and_region() -> None:
    with pytest.raises(LookupError, match=r"no .*price is known for ml\.m5\.xlarge in mars-1"):
        price_per_hour("ml.m5.xlarge", "mars-1")
    with pytest.raises(LookupError, match="ap-northeast-1"):
        estimate_cost("ml.m5.xlarge", 1, 60, "ap-northeast-1")


def test_type_without_a_known_price_is_a_lookup_error_not_a_guess() -> None:
    with pytest.raises(LookupError, match=r"no .*price is known for ml\.g6e\.xlarge in us-east-1"):
        price_per_hour("ml.g6e.xlarge", "us-east-1")
    with pytest.raises(LookupError, match=r"ml\.c5\.xlarge in eu-west-1"):
        price_per_hour("ml.c5.xlarge", "eu-west-1")


def test_unknown_instance_type_in_pricing_is_a_key_error() -> None:
    with pytest.raises(KeyError, match="unknown instance type 'ml.m5.huge'"):
        price_per_hour("ml.m5.huge", "us-east-1")
    # KeyError is a LookupError, so one except clause covers "no price" either way.
    with pytest.raises(LookupError):
        estimate_cost("ml.m5.huge", 1, 60, "us-east-1")
