"""5. Continuous latency: from a file's close inside the container to the object visible in S3.

The container's script writes N files, one every GAP seconds, and prints `CLOSED i <time.time()>`
after closing each (containers share the host's clock). Meanwhile this process lists the output
prefix every 20 ms and notes when each key first shows up.
"""

from __future__ import annotations

import threading
import time

from benchmarks.common import (
    BUCKET,
    Row,
    Section,
    Settings,
    Target,
    job_payload,
    localproc_run,
    log,
    median,
    percentile,
    seconds_text,
    state_dir,
    write_json,
)

WRITER = """\
import sys, time
count, gap = int(sys.argv[1]), float(sys.argv[2])
time.sleep(1.0)  # give the uploader a moment to start watching
for i in range(count):
    with open(f"/opt/ml/processing/output/file-{i:03d}.txt", "w") as handle:
        handle.write(f"file {i}\\n" * 100)
    print(f"CLOSED {i} {time.time():.6f}", flush=True)
    time.sleep(gap)
print(f"END {time.time():.6f}", flush=True)
"""
POLL_SECONDS = 0.02
TARGET_SECONDS = 1.0


class Poller(threading.Thread):
    """Lists `prefix` every POLL_SECONDS and records when each key first appears."""

    def __init__(self, client: object, prefix: str, expected: int, limit_seconds: float) -> None:
        super().__init__(daemon=True)
        self.client = client
        self.prefix = prefix
        self.expected = expected
        self.limit = time.monotonic() + limit_seconds
        self.seen: dict[str, float] = {}
        self.polls = 0
        self.errors = 0
        self.finish = threading.Event()

    def run(self) -> None:
        while time.monotonic() < self.limit and len(self.seen) < self.expected:
            try:
                response = self.client.list_objects_v2(  # type: ignore[attr-defined]
                    Bucket=BUCKET, Prefix=self.prefix
                )
            except Exception:  # noqa: BLE001 - keep polling; counted and reported
                self.errors += 1
            else:
                now = time.time()
                for item in response.get("Contents", []):
                    self.seen.setdefault(item["Key"], now)
            self.polls += 1
            if self.finish.wait(POLL_SECONDS):
                break


def run_continuous(settings: Settings) -> Section:
    section = Section("continuous", "5. Continuous latency")
    assert settings.moto is not None
    count, gap = settings.scaled(20, 6), 0.5
    runs = settings.scaled(2, 1)
    code_prefix = f"continuous/code-{settings.run_id}/"
    settings.moto.ensure_bucket()
    settings.moto.client.put_object(Bucket=BUCKET, Key=code_prefix + "writer.py", Body=WRITER)
    latencies: list[float] = []
    while_running = 0
    total = 0
    endings: list[str] = []
    for index in range(runs):
        name = f"{settings.prefix}-cont-{index}"
        out_prefix = f"continuous/out/{name}/"
        payload = write_json(
            settings.workdir / "payloads" / f"{name}.json",
            job_payload(
                name,
                ["python3", "-u", "/opt/ml/processing/input/code/writer.py", str(count), str(gap)],
                [("code", f"s3://{BUCKET}/{code_prefix}", "/opt/ml/processing/input/code")],
                [("files", f"s3://{BUCKET}/{out_prefix}", "/opt/ml/processing/output")],
                upload_mode="Continuous",
            ),
        )
        log(f"continuous: run {index + 1}/{runs} ({count} files, one every {gap} s)")
        poller = Poller(settings.moto.client, out_prefix, count, limit_seconds=count * gap + 300)
        poller.start()
        with state_dir(settings, name) as state:
            result = localproc_run(settings, payload, state, name, timeout=count * gap + 240)
        # Objects uploaded at the very end need a moment to be listed; then stop polling.
        poller.join(timeout=5)
        poller.finish.set()
        poller.join(timeout=5)
        settings.moto.delete_prefix(out_prefix)
        if not result.ok:
            section.notes.append(f"A Continuous run failed: {result.failure()}")
            continue
        end = result.first(r"END ([0-9.]+)")
        end_at = float(end[1].group(1)) if end else None
        finished_at = result.lines[-1].at if result.lines else None
        for _line, match in result.all(r"CLOSED (\d+) ([0-9.]+)"):
            key = f"{out_prefix}file-{int(match.group(1)):03d}.txt"
            closed = float(match.group(2))
            total += 1
            if key in poller.seen:
                latencies.append(poller.seen[key] - closed)
                if end_at is not None and poller.seen[key] < end_at:
                    while_running += 1
        if end_at is not None and finished_at is not None and poller.seen:
            first_seen = min(poller.seen.values())
            endings.append(
                f"run {index + 1}: first object visible {first_seen - end_at:+.2f} s after the "
                f"script's last line, `localproc run` ended {finished_at - end_at:+.2f} s after "
                f"it; {poller.polls} polls, {poller.errors} errors"
            )
    mid, p95 = median(latencies), percentile(latencies, 0.95)
    section.rows.append(
        Row("continuous", "close in container → visible in S3, median", seconds_text(mid),
            "", "", "", f"{len(latencies)} files")
    )  # fmt: skip
    section.rows.append(
        Row("continuous", "close in container → visible in S3, p95", seconds_text(p95),
            "", "", "", f"{len(latencies)} files")
    )  # fmt: skip
    section.rows.append(
        Row("continuous", "files visible in S3 while the container still ran",
            f"{while_running} of {total}", "", "", "", "")
    )  # fmt: skip
    section.targets.append(
        Target(
            "Continuous latency median ≤ 1 s",
            f"median {seconds_text(mid)}, p95 {seconds_text(p95)}; {while_running} of {total} "
            "files visible before the container ended",
            None if mid is None else mid <= TARGET_SECONDS,
        )
    )
    section.notes.append(
        f"{runs} run(s) of a job with one `S3UploadMode: Continuous` output whose script writes "
        f"{count} files of 1 KB, one every {gap} s, and prints `time.time()` after closing each; "
        f"the benchmark lists the output prefix every {POLL_SECONDS * 1000:.0f} ms "
        "(`list_objects_v2`) and takes the arrival of the first listing that shows a key as its "
        "visible time. " + " · ".join(endings)
    )
    if latencies and while_running == 0:
        section.notes.append(
            "No object became visible while the container ran: this localproc uploads Continuous "
            "outputs only at the end of the job, so the latency is the rest of the job's run "
            "time plus the final upload."
        )
    return section
