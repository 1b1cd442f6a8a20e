"""The console's figures, pure: a job's timeline per instance from its recorded phase times, and
an instance's usage samples brought down to what a chart can show. Times are epoch seconds.

No I/O here: records.telemetry reads the files, service.console assembles the page."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

MAX_POINTS = 300  # a chart's points per instance: about one per two pixels of its width


def build_timeline(
    hosts: Sequence[str],
    phases: Mapping[str, Any],
    now: float,
    max_runtime_seconds: int | None,
) -> dict[str, Any]:
    """Per instance, its segments (Staging, Running, Uploading; a segment still open ends at
    `now` and says so), how it ended (Completed, Failed, Stopped, or Running while it runs),
    and which failed instance failed first; for the job, the span drawn and the deadline
    (MaxRuntimeInSeconds from the containers' start) when there is one."""
    staging = _span(phases.get("Staging"), now)
    uploading = _span(phases.get("Uploading"), now)
    recorded = phases.get("Instances")
    recorded = recorded if isinstance(recorded, Mapping) else {}
    instances = []
    for host in hosts:
        entry = recorded.get(host)
        entry = entry if isinstance(entry, Mapping) else {}
        running = _span(entry, now)
        segments = [
            {"Phase": name, **span}
            for name, span in (("Staging", staging), ("Running", running), ("Uploading", uploading))
            if span is not None
        ]
        instances.append(
            {
                "Host": host,
                "Segments": segments,
                "Outcome": _outcome(entry, running),
                "ExitCode": entry.get("ExitCode"),
                "OomKilled": bool(entry.get("OomKilled")),
                "FailedFirst": False,
            }
        )
    failed = [i for i in instances if i["Outcome"] == "Failed"]
    if failed:
        first = min(failed, key=lambda i: _end_of(i, "Running"))
        first["FailedFirst"] = True
    starts = [s["Start"] for i in instances for s in i["Segments"]]
    ends = [s["End"] for i in instances for s in i["Segments"]]
    container_starts = [
        s["Start"] for i in instances for s in i["Segments"] if s["Phase"] == "Running"
    ]
    deadline = (
        min(container_starts) + max_runtime_seconds
        if container_starts and max_runtime_seconds
        else None
    )
    start, end = (min(starts), max(ends)) if starts else (None, None)
    # A deadline far beyond the run would squash the run into a sliver: it widens the span only
    # when it lies within half the run's length again; otherwise the page points to it.
    in_view = bool(deadline and end is not None and deadline <= end + 0.5 * (end - start))
    return {
        "Start": start,
        "End": max(end, deadline) if in_view and end is not None and deadline else end,
        "Deadline": deadline,
        "DeadlineInView": in_view,
        "Instances": instances,
    }


def _span(entry: Any, now: float) -> dict[str, Any] | None:
    if not isinstance(entry, Mapping) or not _number(entry.get("Start")):
        return None
    end = entry.get("End")
    open_ = not _number(end)
    return {"Start": entry["Start"], "End": now if open_ else end, "Open": open_}


def _outcome(entry: Mapping[str, Any], running: dict[str, Any] | None) -> str:
    if running is None:
        return "NotStarted"
    if running["Open"]:
        return "Running"
    if entry.get("Stopped"):
        return "Stopped"
    return "Completed" if entry.get("ExitCode") == 0 else "Failed"


def _end_of(instance: Mapping[str, Any], phase: str) -> float:
    return next((s["End"] for s in instance["Segments"] if s["Phase"] == phase), float("inf"))


def downsample(
    samples: Sequence[Mapping[str, Any]], max_points: int = MAX_POINTS
) -> list[dict[str, Any]]:
    """Chart points {T, MemoryBytes, Cpus} from samples {T, MemoryBytes, PeakMemoryBytes,
    CpuSeconds}: Cpus is the cores kept busy since the sample before (ΔCPU time / Δt). With
    more samples than `max_points`, each point stands for an equal slice of time and keeps
    the slice's highest memory and CPU, so a peak is never averaged away."""
    points: list[dict[str, Any]] = []
    previous: Mapping[str, Any] | None = None
    for sample in samples:
        t = sample.get("T")
        if not _number(t) or (previous is not None and t <= previous["T"]):
            continue
        memory = sample.get("MemoryBytes")
        if not _number(memory):
            memory = (
                sample.get("PeakMemoryBytes") if _number(sample.get("PeakMemoryBytes")) else None
            )
        cpus = None
        if (
            previous is not None
            and _number(sample.get("CpuSeconds"))
            and _number(previous.get("CpuSeconds"))
        ):
            cpus = max(0.0, (sample["CpuSeconds"] - previous["CpuSeconds"]) / (t - previous["T"]))
        points.append({"T": t, "MemoryBytes": memory, "Cpus": cpus})
        previous = sample
    if len(points) <= max_points or max_points < 1:
        return points
    first, last = points[0]["T"], points[-1]["T"]
    width = (last - first) / max_points
    buckets: dict[int, dict[str, Any]] = {}
    for point in points:
        index = min(int((point["T"] - first) / width), max_points - 1)
        bucket = buckets.setdefault(index, {"T": point["T"], "MemoryBytes": None, "Cpus": None})
        bucket["T"] = point["T"]  # the slice's last moment
        for key in ("MemoryBytes", "Cpus"):
            if point[key] is not None:
                bucket[key] = max(bucket[key] or 0, point[key])
    return [buckets[index] for index in sorted(buckets)]


def peak(points: Sequence[Mapping[str, Any]], key: str) -> float | None:
    values = [p[key] for p in points if _number(p.get(key))]
    return max(values) if values else None


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
