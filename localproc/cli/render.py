"""Human-readable views of jobs for the terminal; `--json` gives the API shapes instead.

Every value shown comes from a payload, a record or a container, so each line is passed through
`printable_line`: a value can neither send a control sequence to the terminal nor start a line
of its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from localproc.printable import printable_line


def describe_table(
    described: dict[str, Any],
    job_dir: Path,
    cost: str | None = None,
    usage: list[str] | None = None,
) -> str:
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
        *_continued("ExitMessage", (described.get("ExitMessage") or "").strip()),
        ("Inputs", ", ".join(i["InputName"] for i in described.get("ProcessingInputs", []))),
        (
            "Outputs",
            ", ".join(
                o["OutputName"]
                for o in described.get("ProcessingOutputConfig", {}).get("Outputs", [])
            ),
        ),
        ("Folder", str(job_dir)),
        ("SageMaker cost", cost or ""),
    ]
    rows += [("Usage" if index == 0 else "", line) for index, line in enumerate(usage or [])]
    width = max(len(label) for label, _ in rows)
    return "\n".join(
        f"{label:<{width}}  {printable_line(str(value))}" for label, value in rows if value
    )


def _continued(label: str, text: str) -> list[tuple[str, str]]:
    """A multi-line value as one row per line, the label on the first."""
    return [(label if index == 0 else "", line) for index, line in enumerate(text.splitlines())]


def list_table(page: dict[str, Any]) -> str:
    summaries = page["ProcessingJobSummaries"]
    if not summaries:
        return "no processing jobs"
    header = ("NAME", "STATUS", "CREATED", "ENDED")
    rows = [
        tuple(
            printable_line(str(cell))
            for cell in (
                s["ProcessingJobName"],
                s["ProcessingJobStatus"],
                s.get("CreationTime", "")[:19].replace("T", " "),
                s.get("ProcessingEndTime", "")[:19].replace("T", " "),
            )
        )
        for s in summaries
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
        for row in [header, *rows]
    ]
    if "NextToken" in page:
        lines.append(printable_line(f"more: --next-token {page['NextToken']}"))
    return "\n".join(lines)


def plan_text(doc: dict[str, Any], first_keys: int = 5) -> str:
    lines = [f"Job {doc['ProcessingJobName']} ({doc['ProcessingJobArn']})"]
    lines.append(f"Image: {doc['Image']['Uri']} ({doc['Image']['Status']})")
    argv = doc["Command"]["Argv"]
    lines.append(
        "Command: "
        + (
            " ".join(argv)
            if argv is not None
            else "the image's ENTRYPOINT/CMD (unknown until the image is pulled)"
        )
    )
    env = ", ".join(f"{k}={v}" for k, v in sorted(doc["Environment"].items()))
    lines.append(f"Environment: {env or '(none)'}")
    inst = doc["Instances"]
    if inst["CpuLimit"] is None:
        limits = "no resource limits"
    else:
        limits = f"{inst['CpuLimit']:g} CPUs and {inst['MemoryLimitBytes'] / 2**30:.2f} GiB each"
    gpus = f", {inst['Gpus']} GPU(s)" if inst["Gpus"] else ""
    lines.append(f"Instances: {inst['Count']} × {inst['Type']}: {limits}{gpus}")
    lines.append(f"Network: {doc['Network']}")
    runtime = doc["MaxRuntimeInSeconds"]
    lines.append(
        f"Deadline: {runtime} s after the containers start (MaxRuntimeInSeconds)"
        if runtime
        else "Deadline: none (no StoppingCondition)"
    )
    lines.append(f"Inputs (from {doc['ObjectStore']}):")
    for instance in doc["InstancePlans"]:
        lines.append(f"  {instance['Host']}")
        for item in instance["Inputs"]:
            paths = [o["Path"] for o in item["Objects"][:first_keys]]
            more = " …" if item["ObjectCount"] > first_keys else ""
            where = f"pipe {item['Pipe']}" if item["Pipe"] else item["LocalPath"]
            gzip = ", gzip" if item["Gzip"] else ""
            lines.append(
                f"    {item['InputName']} → {where} ({item['Mode']}{gzip}): "
                f"{item['ObjectCount']} object(s), {_size(item['Bytes'])}"
                + (f": {', '.join(paths)}{more}" if paths else "")
            )
    if doc["Outputs"]:
        lines.append("Outputs:")
        for out in doc["Outputs"]:
            target = out["S3Uri"] if out["Uploaded"] else "not uploaded (AppManaged/Feature Store)"
            lines.append(
                f"  {out['OutputName']}: {out['LocalPath']} → {target} ({out['S3UploadMode']})"
            )
    lines.append("Estimated SageMaker cost: " + cost_text(doc["EstimatedCost"]))
    lines.extend(f"Note: {note}" for note in doc["Notes"])
    if doc["Problem"]:
        lines.append(f"The job would fail: {doc['Problem']}")
    return "\n".join(printable_line(line) for line in lines)


def cost_text(estimate: dict[str, Any]) -> str:
    if "Unavailable" in estimate:
        return estimate["Unavailable"]
    base = (
        f"{estimate['InstanceCount']} × {estimate['InstanceType']} at "
        f"${estimate['PricePerInstanceHourUsd']:g}/h in {estimate['Region']} "
        f"(on-demand prices of {estimate['PricesTaken']})"
    )
    if "UpToUsd" in estimate:
        bound = f"up to ${estimate['UpToUsd']:.4f} for {estimate['Seconds']} s"
        return f"{bound} (MaxRuntimeInSeconds); {base}"
    if "ActualUsd" in estimate:
        return f"${estimate['ActualUsd']:.4f} for this run's {estimate['Seconds']:.0f} s; {base}"
    return base


def _size(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{count} B"


def run_summary(outcome: Any) -> str:
    uploads = outcome.uploads
    parts = [
        f"{outcome.status}: {outcome.name} in {outcome.seconds:.1f} s",
        f"{len(uploads.uploaded)} output file(s), {_size(uploads.bytes)} uploaded",
    ]
    if outcome.failure_reason:
        parts.append(f"FailureReason: {outcome.failure_reason}")
    if outcome.exit_message:
        parts.append(f"ExitMessage: {outcome.exit_message.strip()}")
    parts.append(f"logs and outputs: {outcome.job_dir}")
    return printable_line(" · ".join(parts))
