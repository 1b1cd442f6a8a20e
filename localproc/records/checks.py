"""Telling a damaged record apart: every member the commands rely on is checked when a record
is read, so that nothing later trips over a damaged one. A record written by localproc always
passes; one changed by hand or by a crash elsewhere raises DamagedRecord saying what is wrong."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from localproc.errors import DamagedRecord
from localproc.records.record import PRIVATE_KEY
from localproc.records.status import STATUSES
from localproc.records.times import parse_timestamp

TIME_MEMBERS = ("CreationTime", "LastModifiedTime", "ProcessingStartTime", "ProcessingEndTime")


def checked_record(name: str, path: Path, raw: bytes) -> dict[str, Any]:
    """The record in `raw`, or DamagedRecord saying what is wrong with it."""
    try:
        record = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise DamagedRecord(name, path, f"it is not JSON ({_short(err)})") from None
    if not isinstance(record, dict):
        raise DamagedRecord(name, path, f"it holds a JSON {type(record).__name__}, not an object")
    problems = []
    if not isinstance(record.get("CreationTime"), str):
        problems.append("CreationTime is missing or not a string")
    if record.get("ProcessingJobStatus") not in STATUSES:
        problems.append("ProcessingJobStatus is missing or not a status")
    for key in TIME_MEMBERS:
        value = record.get(key)
        if isinstance(value, str):
            try:
                parse_timestamp(value)
            except ValueError:
                problems.append(f"{key} is not a time")
        elif value is not None:
            problems.append(f"{key} is not a time")
    problems += shape_problems(record, RECORD_SHAPE, "")
    pid = (record.get(PRIVATE_KEY) or {}).get("RunnerPid") if not problems else None
    if isinstance(pid, int) and pid <= 0:
        problems.append(f"{PRIVATE_KEY}.RunnerPid is not a process id")
    if problems:
        raise DamagedRecord(name, path, "; ".join(problems[:5]))
    return record


# The members of a record that localproc reads (views, listing, liveness, reconciling), with the
# type each must have when present; `True` marks one that must be present.
RECORD_SHAPE: dict[str, Any] = {
    "ProcessingJobName": (str, True),
    "ProcessingJobArn": (str, True),
    "FailureReason": (str, False),
    "ExitMessage": (str, False),
    "AppSpecification": ({"ImageUri": (str, False)}, False),
    "ProcessingResources": (
        {"ClusterConfig": ({"InstanceCount": (int, False), "InstanceType": (str, False)}, False)},
        False,
    ),
    "ProcessingInputs": ([{"InputName": (str, False)}], False),
    "ProcessingOutputConfig": ({"Outputs": ([{"OutputName": (str, False)}], False)}, False),
    PRIVATE_KEY: (
        {
            "RunnerPid": (int, True),
            "RunnerStartTime": (float, True),
            "RunnerHost": (str, True),
            "UsageLines": ([str], False),
        },
        False,
    ),
}


def shape_problems(value: Any, shape: Any, where: str) -> list[str]:
    """What in `value` does not have the type `shape` gives: a dict of member → (shape,
    required), a one-item list for a list's items, or a Python type."""
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            return [f"{where or 'the record'} is not an object"]
        problems = []
        for member, (inner, required) in shape.items():
            at = f"{where}.{member}" if where else member
            if member not in value or value[member] is None:
                if required:
                    problems.append(f"{at} is missing")
                continue
            problems += shape_problems(value[member], inner, at)
        return problems
    if isinstance(shape, list):
        if not isinstance(value, list):
            return [f"{where} is not a list"]
        return [
            problem
            for index, item in enumerate(value)
            for problem in shape_problems(item, shape[0], f"{where}[{index}]")
        ]
    wanted = (int, float) if shape is float else shape
    if not isinstance(value, wanted) or isinstance(value, bool):
        return [f"{where} is not a {shape.__name__}"]
    return []


def _short(err: BaseException) -> str:
    text = str(err)
    return text if len(text) <= 120 else text[:117] + "..."
