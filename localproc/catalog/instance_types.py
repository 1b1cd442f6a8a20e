"""What each SageMaker Processing instance type is: vCPUs, memory and GPUs.

People run a job locally to learn how big an instance it needs; this catalog turns a measured peak
memory (and CPU time) into "the smallest ml.m5 that holds it".

Source of the figures: the Amazon EC2 instance type specifications
(https://aws.amazon.com/ec2/instance-types/, "Previous generation" page for m4, c4 and p2) and the
SageMaker pricing page's instance tables. An ``ml.X.Y`` type has exactly the vCPUs, memory and GPUs
of the EC2 type ``X.Y``. The rows were cross-checked (November 2026) against AWS's own table of
ml.* instance resources in ``aws/sagemaker-hyperpod-cli``
(``src/sagemaker/hyperpod/training/constants.py``: t3, m5, c5, m6i, c6i, m7i, r7i, g5, g6, g6e,
g7e, p5.4xlarge), torchx's ``named_resources_aws.py`` (p3, g4dn), a published EC2 GPU listing (p2)
and the EC2 G7e listing in kubernetes/autoscaler#9854 (g7e). m4, c4, r5, r5d and c7i rest on the
EC2 specification pages alone (their standard 4, 1.875, 8, 8 and 2 GiB per vCPU). Every row is
written out, one line per type: nothing is computed from a family's ratios.

The set of types is the ``ProcessingInstanceType`` enum of the botocore SageMaker model;
``tests/test_instance_types.py`` fails when botocore gains a type this table lacks.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

_GIB = 1024**3


@dataclass(frozen=True)
class InstanceType:
    """One ML instance type: its size as SageMaker gives it to a processing container."""

    name: str
    vcpus: int
    memory_gib: float
    gpus: int
    gpu_kind: str | None

    @property
    def family(self) -> str:
        """``ml.m5`` for ``ml.m5.xlarge``: the part before the size."""
        return self.name.rsplit(".", 1)[0]

    @property
    def memory_bytes(self) -> int:
        """Memory in bytes (GiB × 2**30); c4's 7.5 GiB is exact in binary: int() loses nothing."""
        return int(self.memory_gib * _GIB)


_K80 = "NVIDIA K80"
_V100 = "NVIDIA V100"
_T4 = "NVIDIA T4"
_A10G = "NVIDIA A10G"
_L4 = "NVIDIA L4"
_L40S = "NVIDIA L40S"
_H100 = "NVIDIA H100"
_RTX_PRO_6000 = "NVIDIA RTX PRO 6000 Blackwell Server Edition"

# name, vCPUs, memory GiB, GPUs, GPU kind — in the order of botocore's enum.
_ROWS: tuple[tuple[str, int, float, int, str | None], ...] = (
    ("ml.t3.medium", 2, 4, 0, None),
    ("ml.t3.large", 2, 8, 0, None),
    ("ml.t3.xlarge", 4, 16, 0, None),
    ("ml.t3.2xlarge", 8, 32, 0, None),
    ("ml.m4.xlarge", 4, 16, 0, None),
    ("ml.m4.2xlarge", 8, 32, 0, None),
    ("ml.m4.4xlarge", 16, 64, 0, None),
    ("ml.m4.10xlarge", 40, 160, 0, None),
    ("ml.m4.16xlarge", 64, 256, 0, None),
    ("ml.c4.xlarge", 4, 7.5, 0, None),
    ("ml.c4.2xlarge", 8, 15, 0, None),
    ("ml.c4.4xlarge", 16, 30, 0, None),
    ("ml.c4.8xlarge", 36, 60, 0, None),
    # EC2 counts each K80 board as two GPUs, so p2.xlarge has one "GPU" (half a board).
    ("ml.p2.xlarge", 4, 61, 1, _K80),
    ("ml.p2.8xlarge", 32, 488, 8, _K80),
    ("ml.p2.16xlarge", 64, 732, 16, _K80),
    ("ml.p3.2xlarge", 8, 61, 1, _V100),
    ("ml.p3.8xlarge", 32, 244, 4, _V100),
    ("ml.p3.16xlarge", 64, 488, 8, _V100),
    ("ml.c5.xlarge", 4, 8, 0, None),
    ("ml.c5.2xlarge", 8, 16, 0, None),
    ("ml.c5.4xlarge", 16, 32, 0, None),
    ("ml.c5.9xlarge", 36, 72, 0, None),
    ("ml.c5.18xlarge", 72, 144, 0, None),
    ("ml.m5.large", 2, 8, 0, None),
    ("ml.m5.xlarge", 4, 16, 0, None),
    ("ml.m5.2xlarge", 8, 32, 0, None),
    ("ml.m5.4xlarge", 16, 64, 0, None),
    ("ml.m5.12xlarge", 48, 192, 0, None),
    ("ml.m5.24xlarge", 96, 384, 0, None),
    ("ml.r5.large", 2, 16, 0, None),
    ("ml.r5.xlarge", 4, 32, 0, None),
    ("ml.r5.2xlarge", 8, 64, 0, None),
    ("ml.r5.4xlarge", 16, 128, 0, None),
    ("ml.r5.8xlarge", 32, 256, 0, None),
    ("ml.r5.12xlarge", 48, 384, 0, None),
    ("ml.r5.16xlarge", 64, 512, 0, None),
    ("ml.r5.24xlarge", 96, 768, 0, None),
    ("ml.g4dn.xlarge", 4, 16, 1, _T4),
    ("ml.g4dn.2xlarge", 8, 32, 1, _T4),
    ("ml.g4dn.4xlarge", 16, 64, 1, _T4),
    ("ml.g4dn.8xlarge", 32, 128, 1, _T4),
    ("ml.g4dn.12xlarge", 48, 192, 4, _T4),
    ("ml.g4dn.16xlarge", 64, 256, 1, _T4),
    ("ml.g5.xlarge", 4, 16, 1, _A10G),
    ("ml.g5.2xlarge", 8, 32, 1, _A10G),
    ("ml.g5.4xlarge", 16, 64, 1, _A10G),
    ("ml.g5.8xlarge", 32, 128, 1, _A10G),
    ("ml.g5.16xlarge", 64, 256, 1, _A10G),
    ("ml.g5.12xlarge", 48, 192, 4, _A10G),
    ("ml.g5.24xlarge", 96, 384, 4, _A10G),
    ("ml.g5.48xlarge", 192, 768, 8, _A10G),
    ("ml.r5d.large", 2, 16, 0, None),
    ("ml.r5d.xlarge", 4, 32, 0, None),
    ("ml.r5d.2xlarge", 8, 64, 0, None),
    ("ml.r5d.4xlarge", 16, 128, 0, None),
    ("ml.r5d.8xlarge", 32, 256, 0, None),
    ("ml.r5d.12xlarge", 48, 384, 0, None),
    ("ml.r5d.16xlarge", 64, 512, 0, None),
    ("ml.r5d.24xlarge", 96, 768, 0, None),
    ("ml.g6.xlarge", 4, 16, 1, _L4),
    ("ml.g6.2xlarge", 8, 32, 1, _L4),
    ("ml.g6.4xlarge", 16, 64, 1, _L4),
    ("ml.g6.8xlarge", 32, 128, 1, _L4),
    ("ml.g6.12xlarge", 48, 192, 4, _L4),
    ("ml.g6.16xlarge", 64, 256, 1, _L4),
    ("ml.g6.24xlarge", 96, 384, 4, _L4),
    ("ml.g6.48xlarge", 192, 768, 8, _L4),
    ("ml.g6e.xlarge", 4, 32, 1, _L40S),
    ("ml.g6e.2xlarge", 8, 64, 1, _L40S),
    ("ml.g6e.4xlarge", 16, 128, 1, _L40S),
    ("ml.g6e.8xlarge", 32, 256, 1, _L40S),
    ("ml.g6e.12xlarge", 48, 384, 4, _L40S),
    ("ml.g6e.16xlarge", 64, 512, 1, _L40S),
    ("ml.g6e.24xlarge", 96, 768, 4, _L40S),
    ("ml.g6e.48xlarge", 192, 1536, 8, _L40S),
    ("ml.m6i.large", 2, 8, 0, None),
    ("ml.m6i.xlarge", 4, 16, 0, None),
    ("ml.m6i.2xlarge", 8, 32, 0, None),
    ("ml.m6i.4xlarge", 16, 64, 0, None),
    ("ml.m6i.8xlarge", 32, 128, 0, None),
    ("ml.m6i.12xlarge", 48, 192, 0, None),
    ("ml.m6i.16xlarge", 64, 256, 0, None),
    ("ml.m6i.24xlarge", 96, 384, 0, None),
    ("ml.m6i.32xlarge", 128, 512, 0, None),
    ("ml.c6i.xlarge", 4, 8, 0, None),
    ("ml.c6i.2xlarge", 8, 16, 0, None),
    ("ml.c6i.4xlarge", 16, 32, 0, None),
    ("ml.c6i.8xlarge", 32, 64, 0, None),
    ("ml.c6i.12xlarge", 48, 96, 0, None),
    ("ml.c6i.16xlarge", 64, 128, 0, None),
    ("ml.c6i.24xlarge", 96, 192, 0, None),
    ("ml.c6i.32xlarge", 128, 256, 0, None),
    ("ml.m7i.large", 2, 8, 0, None),
    ("ml.m7i.xlarge", 4, 16, 0, None),
    ("ml.m7i.2xlarge", 8, 32, 0, None),
    ("ml.m7i.4xlarge", 16, 64, 0, None),
    ("ml.m7i.8xlarge", 32, 128, 0, None),
    ("ml.m7i.12xlarge", 48, 192, 0, None),
    ("ml.m7i.16xlarge", 64, 256, 0, None),
    ("ml.m7i.24xlarge", 96, 384, 0, None),
    ("ml.m7i.48xlarge", 192, 768, 0, None),
    ("ml.c7i.large", 2, 4, 0, None),
    ("ml.c7i.xlarge", 4, 8, 0, None),
    ("ml.c7i.2xlarge", 8, 16, 0, None),
    ("ml.c7i.4xlarge", 16, 32, 0, None),
    ("ml.c7i.8xlarge", 32, 64, 0, None),
    ("ml.c7i.12xlarge", 48, 96, 0, None),
    ("ml.c7i.16xlarge", 64, 128, 0, None),
    ("ml.c7i.24xlarge", 96, 192, 0, None),
    ("ml.c7i.48xlarge", 192, 384, 0, None),
    ("ml.r7i.large", 2, 16, 0, None),
    ("ml.r7i.xlarge", 4, 32, 0, None),
    ("ml.r7i.2xlarge", 8, 64, 0, None),
    ("ml.r7i.4xlarge", 16, 128, 0, None),
    ("ml.r7i.8xlarge", 32, 256, 0, None),
    ("ml.r7i.12xlarge", 48, 384, 0, None),
    ("ml.r7i.16xlarge", 64, 512, 0, None),
    ("ml.r7i.24xlarge", 96, 768, 0, None),
    ("ml.r7i.48xlarge", 192, 1536, 0, None),
    ("ml.p5.4xlarge", 16, 256, 1, _H100),
    ("ml.g7e.2xlarge", 8, 64, 1, _RTX_PRO_6000),
    ("ml.g7e.4xlarge", 16, 128, 1, _RTX_PRO_6000),
    ("ml.g7e.8xlarge", 32, 256, 1, _RTX_PRO_6000),
    ("ml.g7e.12xlarge", 48, 512, 2, _RTX_PRO_6000),
    ("ml.g7e.24xlarge", 96, 1024, 4, _RTX_PRO_6000),
    ("ml.g7e.48xlarge", 192, 2048, 8, _RTX_PRO_6000),
)

#: Every catalogued type by name. Read-only so callers cannot change the catalog for each other.
INSTANCE_TYPES: Mapping[str, InstanceType] = MappingProxyType(
    {row[0]: InstanceType(*row) for row in _ROWS}
)


def _size_key(it: InstanceType) -> tuple[float, int, str]:
    # The name breaks the (rare) tie so the order never depends on the table's order.
    return (it.memory_gib, it.vcpus, it.name)


def instance_type(name: str) -> InstanceType:
    """The catalog entry for ``name`` (e.g. ``"ml.m5.xlarge"``); KeyError if it is not one."""
    try:
        return INSTANCE_TYPES[name]
    except KeyError:
        close = difflib.get_close_matches(name, INSTANCE_TYPES, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise KeyError(
            f"unknown instance type {name!r}: not a SageMaker Processing instance type{hint}"
        ) from None


def family_members(family: str) -> list[InstanceType]:
    """The types of ``family`` (e.g. ``"ml.m5"``), smallest first: by memory, then vCPUs.

    KeyError for a family with no types, so a typo is not mistaken for "nothing fits".
    """
    members = sorted((it for it in INSTANCE_TYPES.values() if it.family == family), key=_size_key)
    if not members:
        families = sorted({it.family for it in INSTANCE_TYPES.values()})
        raise KeyError(f"unknown instance family {family!r}; known families: {', '.join(families)}")
    return members


def smallest_fitting(
    family: str,
    peak_memory_bytes: int,
    cpu_seconds: float | None = None,
    wall_seconds: float | None = None,
) -> InstanceType | None:
    """The smallest type of ``family`` whose memory holds ``peak_memory_bytes``, or None.

    With ``cpu_seconds`` and ``wall_seconds`` (CPU time and elapsed time of a local run), the type
    must also have at least ``ceil(cpu_seconds / wall_seconds)`` vCPUs, so a job that kept four
    cores busy is not squeezed onto two. The memory is the whole instance's; SageMaker keeps some
    for itself, so a peak close to the limit deserves the next size up — that margin is the
    caller's choice, not made here.
    """
    if peak_memory_bytes < 0:
        raise ValueError(f"peak_memory_bytes must not be negative, got {peak_memory_bytes}")
    if (cpu_seconds is None) != (wall_seconds is None):
        # One without the other cannot give a parallelism; ignoring it would hide a caller's bug.
        raise ValueError("give both cpu_seconds and wall_seconds, or neither")
    min_vcpus = 0
    if cpu_seconds is not None and wall_seconds is not None:
        if wall_seconds <= 0:
            raise ValueError(f"wall_seconds must be positive, got {wall_seconds}")
        if cpu_seconds < 0:
            raise ValueError(f"cpu_seconds must not be negative, got {cpu_seconds}")
        min_vcpus = math.ceil(cpu_seconds / wall_seconds)
    for it in family_members(family):
        if it.memory_bytes >= peak_memory_bytes and it.vcpus >= min_vcpus:
            return it
    return None
