"""Human-readable views of jobs for the terminal; `--json` gives the API shapes instead."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def describe_table(described: dict[str, Any], job_dir: Path) -> str:
    cluster = described.get("ProcessingResources", {}).get("ClusterConfig", {})
    app = described.get("AppSpecification", {})
    rows = [
        ("Name", described["ProcessingJobName"]),
        ("Status", described["ProcessingJobStatus"]),
        ("ARN", described["ProcessingJobArn"]),
        ("Image", app.get("ImageUri", "")),
        ("Instances", f"{cluster.get('InstanceCount')} × {cluster.get('InstanceType')}"),
        ("Created", described.get("CreationTime", "")),
        ("Started", described.get("ProcessingStartTime", "")),
        ("Ended", described.get("ProcessingEndTime", "")),
        ("FailureReason", described.get("FailureReason", "")),
        ("ExitMessage", (described.get("ExitMessage") or "").strip()),
        ("Inputs", ", ".join(i["InputName"] for i in described.get("ProcessingInputs", []))),
        (
            "Outputs",
            ", ".join(
                o["OutputName"]
                for o in described.get("ProcessingOutputConfig", {}).get("Outputs", [])
            ),
        ),
        ("Folder", str(job_dir)),
    ]
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label:<{width}}  {value}" for label, value in rows if value)


def list_table(page: dict[str, Any]) -> str:
    summaries = page["ProcessingJobSummaries"]
    if not summaries:
        return "no processing jobs"
    header = ("NAME", "STATUS", "CREATED", "ENDED")
    rows = [
        (
            s["ProcessingJobName"],
            s["ProcessingJobStatus"],
            s.get("CreationTime", "")[:19].replace("T", " "),
            s.get("ProcessingEndTime", "")[:19].replace("T", " "),
        )
        for s in summaries
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
        for row in [header, *rows]
    ]
    if "NextToken" in page:
        lines.append(f"more: --next-token {page['NextToken']}")
    return "\n".join(lines)
