"""The text views of `localproc pipeline`: the live step lines and logs of `run`, the final step
table, the plan, describe, and the lists."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import typer

from localproc.printable import printable_line


class LiveTable:
    """Follows an execution as its executor saves it: a line per step status change (stderr),
    and each running job's log lines as `[STEP algo-N] line` (stdout)."""

    def __init__(self, state_dir: Path) -> None:
        from localproc.service.jobs import job_store

        self.jobs = job_store(state_dir)
        self.seen: dict[str, tuple[str, str | None]] = {}
        self.tailers: list[threading.Thread] = []
        self.execution_id: str | None = None
        self.stop_store: Any = None  # set by a stop asked for (Ctrl-C, SIGTERM)
        self.stop_sent = False
        self.steps: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def changed(self, execution: dict[str, Any]) -> None:
        with self._lock:
            self.execution_id = execution["ExecutionId"]
            self._send_stop()
            self.steps = [dict(e) for e in execution.get("Steps", [])]
            for entry in self.steps:
                name, status, job = (
                    entry["StepName"],
                    entry["StepStatus"],
                    entry.get("LocalJobName"),
                )
                if self.seen.get(name) == (status, job):
                    continue
                self.seen[name] = (status, job)
                _note(f"{name:<24} {status:<10} {_detail(entry)}")
                if status == "Executing" and job and not entry.get("CacheHitResult"):
                    self._tail(name, job)

    def _tail(self, step: str, job: str) -> None:
        from localproc.errors import LocalprocError
        from localproc.service.jobs import follow_logs

        def emit(host: str, line: str) -> None:
            typer.echo(printable_line(f"[{step} {host}] {line}"))

        def follow() -> None:
            try:
                follow_logs(self.jobs, job, None, True, emit, poll_seconds=0.3)
            except LocalprocError as err:
                _note(f"{step}: its log cannot be followed: {err}")

        thread = threading.Thread(target=follow, name=f"logs-{job}", daemon=True)
        self.tailers.append(thread)
        thread.start()

    def stop_requested(self, store: Any) -> None:
        """Ctrl-C or SIGTERM: the execution is asked to stop (once it exists)."""
        self.stop_store = store
        self._send_stop()

    def _send_stop(self) -> None:
        if self.stop_store is not None and self.execution_id and not self.stop_sent:
            self.stop_sent = True
            self.stop_store.request_stop(self.execution_id)
            _note("stopping the execution: its running steps' jobs are being stopped")

    def finish(self) -> None:
        for thread in self.tailers:
            thread.join(timeout=30)
        if self.steps:
            _note("steps:\n" + steps_text(self.steps))


def _note(text: str) -> None:
    typer.echo(f"localproc: {text}", err=True)


def _detail(entry: dict[str, Any]) -> str:
    metadata = entry.get("Metadata") or {}
    parts = []
    if entry.get("LocalJobName"):
        parts.append(str(entry["LocalJobName"]))
    if entry.get("CacheHitResult"):
        parts.append("(cached: " + entry["CacheHitResult"]["SourcePipelineExecutionArn"] + ")")
    if "Condition" in metadata:
        parts.append(f"outcome {metadata['Condition'].get('Outcome')}")
    if entry.get("FailureReason"):
        parts.append(printable_line(str(entry["FailureReason"])))
    return " ".join(parts)


def table(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    cells = [[printable_line(str(row.get(c, "") or "")) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def steps_text(steps: list[dict[str, Any]]) -> str:
    rows = []
    for entry in steps:
        job = (entry.get("Metadata") or {}).get("ProcessingJob", {}).get("Arn", "")
        rows.append({
            "Step": entry["StepName"], "Status": entry["StepStatus"],
            "Started": entry.get("StartTime", ""), "Ended": entry.get("EndTime", ""),
            "Job": job.rsplit("/", 1)[-1], "Detail": _detail({**entry, "LocalJobName": None}),
        })  # fmt: skip
    return table(rows, ("Step", "Status", "Started", "Ended", "Job", "Detail"))


def plan_text(doc: dict[str, Any]) -> str:
    lines = ["Parameters:"]
    lines += [f"  {name} = {json.dumps(value)}" for name, value in doc["Parameters"].items()]
    lines.append("Steps (a wave waits only for earlier waves):")
    for step in doc["Steps"]:
        here = "runs here" if step["RunsHere"] else "CANNOT RUN HERE"
        waits = ", ".join(step["WaitsFor"]) or "nothing"
        extra = f"; {step['Branch']}" if step["Branch"] else ""
        cached = "; cached" if step["Cached"] else ""
        lines.append(f"  [{step['Wave']}] {step['Name']} ({step['Type']}, {here}{cached}{extra})")
        lines.append(f"      waits for: {waits}")
        if step["Type"] == "Processing":
            lines += _processing_lines(step["Arguments"])
    for problem in doc["CannotRun"]:
        lines.append(f"Cannot run here: {problem}")
    return "\n".join(printable_line(line) for line in lines)


def _processing_lines(arguments: dict[str, Any]) -> list[str]:
    """A processing step's image, command, inputs and outputs. The arguments are the definition's,
    not yet checked as a job request (that happens at the step's turn), so any member may be of
    the wrong shape: shown as it is, never a traceback."""
    app = _object(arguments.get("AppSpecification"))
    command = _items(app.get("ContainerEntrypoint")) + _items(app.get("ContainerArguments"))
    lines = [f"      image: {app.get('ImageUri')}; command: {' '.join(map(str, command))}"]
    for item in map(_object, _items(arguments.get("ProcessingInputs"))):
        source = _object(item.get("S3Input")).get("S3Uri")
        lines.append(f"      input {item.get('InputName')}: {source}")
    outputs = _object(arguments.get("ProcessingOutputConfig")).get("Outputs")
    for item in map(_object, _items(outputs)):
        target = _object(item.get("S3Output")).get("S3Uri")
        lines.append(f"      output {item.get('OutputName')}: {target}")
    return lines


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _items(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def describe_text(described: dict[str, Any]) -> str:
    definition = json.loads(described["PipelineDefinition"])
    names = [step.get("Name") for step in definition.get("Steps", [])]
    lines = [
        f"Pipeline {described['PipelineName']} ({described['PipelineArn']})",
        f"Created: {described.get('CreationTime')}; last run: {described.get('LastRunTime', '-')}",
        f"Parameters: {', '.join(p.get('Name', '?') for p in definition.get('Parameters', []))}",
        f"Steps: {', '.join(map(str, names))}",
    ]
    return "\n".join(printable_line(line) for line in lines)
