"""Jobs recorded by hand, as a run records them, for the tests of serve (unit and integration)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


# -- helpers for hand-made jobs ------------------------------------------------------------------
def write_record(state: Path, name: str, fields: dict[str, Any]) -> Path:
    job = state / "jobs" / name
    job.mkdir(parents=True, exist_ok=True)
    record = {
        "ProcessingJobName": name,
        "ProcessingJobArn": f"arn:aws:sagemaker:us-east-1:000000000000:processing-job/{name}",
        "CreationTime": "2026-01-01T00:00:00+00:00",
        **fields,
    }
    (job / "record.json").write_text(json.dumps(record))
    return job


def ended_job(state: Path, name: str) -> Path:
    return write_record(
        state,
        name,
        {
            "ProcessingJobStatus": "Completed",
            "ProcessingStartTime": "2026-01-01T00:00:01+00:00",
            "ProcessingEndTime": "2026-01-01T00:00:05+00:00",
        },
    )
