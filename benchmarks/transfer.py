"""3. Transfer: many small objects and one big object, down and up, through localproc's storage
layer against `aws s3 cp --recursive`; 6. Footprint: the `localproc run` process's peak memory
while it stages and uploads them."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

from benchmarks import envs
from benchmarks.common import (
    BUCKET,
    REPO,
    Line,
    Result,
    Row,
    Section,
    Settings,
    Target,
    folder_bytes,
    job_payload,
    localproc_run,
    log,
    median,
    mib_text,
    ratio_text,
    run,
    seconds_text,
    staging_seconds,
    state_dir,
    write_json,
)
from benchmarks.datasets import Dataset, dataset

WORKER = REPO / "benchmarks" / "transfer_worker.py"
INPUT_PATH = "/opt/ml/processing/input/data"
OUTPUT_PATH = "/opt/ml/processing/output"
MEMORY_TARGET = 150 * 2**20


def _worker(settings: Settings, mode: str, source: str, dest: str) -> Result:
    assert settings.moto is not None
    return run(
        [sys.executable, str(WORKER), mode, settings.moto.endpoint, source, dest],
        sample_rss=True,
        timeout=900,
    )


def _cli(settings: Settings, aws: Path, source: str, dest: str) -> Result:
    assert settings.moto is not None
    return run(
        [str(aws), "s3", "cp", "--recursive", source, dest,
         "--endpoint-url", settings.moto.endpoint, "--only-show-errors", "--no-progress"],
        sample_rss=True,
        timeout=900,
    )  # fmt: skip


def _checked_download(result: Result, dest: Path, expected: Dataset) -> Result:
    found = folder_bytes(dest) if dest.exists() else (0, 0)
    if result.ok and found != (expected.objects, expected.bytes):
        result.returncode = -1
        result.lines.append(
            Line(time.time(), "bench", f"downloaded (files, bytes) {found}, expected "
                 f"{(expected.objects, expected.bytes)}")
        )  # fmt: skip
    shutil.rmtree(dest, ignore_errors=True)
    return result


def _checked_upload(settings: Settings, result: Result, prefix: str, expected: Dataset) -> Result:
    assert settings.moto is not None
    count = settings.moto.delete_prefix(prefix)  # also frees moto's memory for the next round
    if result.ok and count != expected.objects:
        result.returncode = -1
        result.lines.append(
            Line(time.time(), "bench", f"uploaded {count} objects, expected {expected.objects}")
        )
    return result


def _in_run_staging(settings: Settings, data: Dataset, index: int) -> tuple[Result, float | None]:
    """A `localproc run --no-cache` whose container only runs `true`: its staging time."""
    name = f"{settings.prefix}-stage-{data.key}-{index}"
    payload = write_json(
        settings.workdir / "payloads" / f"{name}.json",
        job_payload(name, ["true"], [("data", data.uri, INPUT_PATH)], []),
    )
    with state_dir(settings, name) as state:
        result = localproc_run(settings, payload, state, name, "--no-cache", timeout=900)
        seconds, _ = staging_seconds(result, state / "jobs" / name)
    return result, seconds


def run_transfer(settings: Settings) -> Section:
    section = Section("transfer", "3. Transfer")
    repeats = settings.repeats
    try:
        aws: Path | None = envs.awscli()
        version = run([str(aws), "--version"], timeout=60).output.strip()
        section.notes.append(f"Baseline: `{version}` from PyPI's `awscli`, in its own venv.")
    except envs.EnvironmentUnavailable as exc:
        aws = None
        section.notes.append(f"The AWS CLI could not be installed, so it was not measured: {exc}")
    peaks: list[str] = []
    cpu_text: list[str] = []
    for key in ("many", "big"):
        data = dataset(settings, key)
        times: dict[str, list[float]] = {}
        rss: dict[str, list[int]] = {}
        cpu: dict[str, list[float]] = {}
        failures: dict[str, str] = {}

        def keep(kind: str, result: Result, seconds: float | None = None, measured: bool = True,
                 times=times, rss=rss, cpu=cpu, failures=failures) -> None:  # fmt: skip
            if not result.ok:
                failures[kind] = result.failure()
                return
            if measured:
                times.setdefault(kind, []).append(result.seconds if seconds is None else seconds)
                if result.peak_rss:
                    rss.setdefault(kind, []).append(result.peak_rss)
                if result.cpu_seconds is not None:
                    cpu.setdefault(kind, []).append(result.cpu_seconds)

        log(f"transfer {data.label}: download")
        for index in range(repeats + 1):  # the first round warms caches and is not counted
            measured = index > 0
            dest = settings.workdir / "download" / f"lp-{key}-{index}"
            result = _checked_download(
                _worker(settings, "download", data.uri, str(dest)), dest, data
            )
            keep("lp-down", result, measured=measured)
            if result.ok and measured:
                report = [ln.text for ln in result.lines if ln.text.startswith("{")]
                worker = json.loads(report[-1]) if report else {}
                if "transfer_seconds" in worker:
                    times.setdefault("lp-down-inner", []).append(worker["transfer_seconds"])
            if aws is not None:
                dest = settings.workdir / "download" / f"cli-{key}-{index}"
                keep("cli-down", _checked_download(_cli(settings, aws, data.uri, str(dest)),
                                                   dest, data), measured=measured)  # fmt: skip
        log(f"transfer {data.label}: staging in `localproc run --no-cache`")
        for index in range(max(1, repeats - 2)):
            result, staged = _in_run_staging(settings, data, index)
            keep("lp-stage", result, staged if staged is not None else result.seconds)
        log(f"transfer {data.label}: upload")
        for index in range(repeats + 1):
            measured = index > 0
            prefix = f"upload/lp-{key}-{index}/"
            result = _worker(settings, "upload", str(data.folder), f"s3://{BUCKET}/{prefix}")
            keep("lp-up", _checked_upload(settings, result, prefix, data), measured=measured)
            if aws is not None:
                prefix = f"upload/cli-{key}-{index}/"
                result = _cli(settings, aws, str(data.folder), f"s3://{BUCKET}/{prefix}")
                keep("cli-up", _checked_upload(settings, result, prefix, data), measured=measured)

        med = {kind: median(values) for kind, values in times.items()}
        counts = {kind: len(values) for kind, values in times.items()}
        for direction, verb in (("down", "download"), ("up", "upload")):
            lp, cli = med.get(f"lp-{direction}"), med.get(f"cli-{direction}")
            section.rows.append(
                Row("transfer", f"{verb} {data.label}: localproc storage layer (whole process)",
                    seconds_text(lp), "`aws s3 cp --recursive`", seconds_text(cli),
                    ratio_text(lp, cli), f"{counts.get(f'lp-{direction}', 0)}/"
                    f"{counts.get(f'cli-{direction}', 0)}")
            )  # fmt: skip
            section.targets.append(
                Target(
                    f"{verb} {data.label} at least as fast as the AWS CLI",
                    f"{ratio_text(lp, cli)} ({seconds_text(lp)} vs {seconds_text(cli)})",
                    None if lp is None or cli is None else lp <= cli,
                )
            )
            if direction == "down":
                stage = med.get("lp-stage")
                section.rows.append(
                    Row("transfer", f"download {data.label}: staging inside `localproc run "
                        "--no-cache`", seconds_text(stage), "`aws s3 cp --recursive`",
                        seconds_text(cli), ratio_text(stage, cli),
                        f"{counts.get('lp-stage', 0)}/{counts.get('cli-down', 0)}")
                )  # fmt: skip
        section.notes.append(
            f"{data.label}: localproc's download after start-up (in the worker) took "
            f"{seconds_text(med.get('lp-down-inner'))} (median)."
        )
        cpu_text.append(
            f"{data.label}: localproc storage layer {_cpu(cpu, 'lp-down')} down / "
            f"{_cpu(cpu, 'lp-up')} up; AWS CLI {_cpu(cpu, 'cli-down')} down / "
            f"{_cpu(cpu, 'cli-up')} up"
        )
        peaks.append(
            f"{data.label}: localproc storage layer {mib_text(median(rss.get('lp-down', [])))} "
            f"down / {mib_text(median(rss.get('lp-up', [])))} up; AWS CLI "
            f"{mib_text(median(rss.get('cli-down', [])))} down / "
            f"{mib_text(median(rss.get('cli-up', [])))} up"
        )
        for kind, failure in failures.items():
            section.notes.append(f"A `{kind}` run of {data.label} failed: {failure}")
    section.notes.insert(
        0,
        f"Whole-process wall time of both tools, median of {repeats} interleaved repeats after "
        "one unmeasured round, from and to the same moto endpoint, every byte checked "
        "(downloads: file count and size on disk; uploads: object count), uploads deleted after "
        'each round. "localproc storage layer" is `benchmarks/transfer_worker.py`: '
        "`open_store(...).list_objects` + `download_file` per object in a pool of localproc's "
        "`DOWNLOAD_WORKERS` threads, as `stage_inputs` does (uploads: `upload_file` in a pool of "
        "`UPLOAD_WORKERS`, as `upload_outputs` does), so it pays Python's and boto3's start-up "
        'like the CLI does. "staging inside `localproc run --no-cache`" is the staging phase '
        "of a real run (a job whose container runs `true`): from the arrival of its "
        "`staging N input object(s)` line to the moment it writes the instances' config files, "
        "which it does right after the last object is in place; it excludes start-up and "
        "listing, so it is the figure people see in a run, not an apples-to-apples one.",
    )
    section.notes.append("Peak RSS (median): " + "; ".join(peaks) + ".")
    section.notes.append(
        "CPU time, user + system (median): " + "; ".join(cpu_text) + ". On this 2-core host "
        "the client shares the CPUs with the moto server, so client CPU time turns into wall "
        "time."
    )
    section.notes.append(
        "The big object's downloads measure moto more than either client: moto answers every "
        "ranged GET (both tools fetch 8 MiB ranges) by copying the whole object out of its "
        "buffer under a per-object lock, so its download rate stays far below its upload rate."
    )
    return section


def _cpu(cpu: dict[str, list[float]], kind: str) -> str:
    return seconds_text(median(cpu.get(kind, [])))


def run_footprint(settings: Settings) -> Section:
    section = Section("footprint", "6. Footprint")
    repeats = settings.scaled(3, 1)
    from benchmarks.overhead import trivial_inputs, trivial_job

    trivial_inputs(settings)
    baseline: list[int] = []
    for index in range(repeats):
        name = f"{settings.prefix}-fp-trivial-{index}"
        payload = write_json(settings.workdir / "payloads" / f"{name}.json",
                             trivial_job(settings, name))  # fmt: skip
        with state_dir(settings, name) as state:
            result = localproc_run(settings, payload, state, name, sample_rss=True)
        if result.ok and result.peak_rss:
            baseline.append(result.peak_rss)
        elif not result.ok:
            section.notes.append(f"A trivial run failed: {result.failure()}")
    base = median([float(b) for b in baseline])
    for key in ("big", "many"):
        data = dataset(settings, key)
        log(f"footprint {data.label}: staged in and uploaded out by `localproc run`")
        peaks: dict[str, list[float]] = {"all": [], "staging": [], "upload": []}
        for index in range(repeats):
            name = f"{settings.prefix}-fp-{key}-{index}"
            out_prefix = f"footprint/{name}/"
            payload = write_json(
                settings.workdir / "payloads" / f"{name}.json",
                job_payload(
                    name,
                    ["sh", "-c", f"cp -r {INPUT_PATH}/. {OUTPUT_PATH}/"],
                    [("data", data.uri, INPUT_PATH)],
                    [("copy", f"s3://{BUCKET}/{out_prefix}", OUTPUT_PATH)],
                    instance_type="ml.m5.xlarge",
                ),
            )
            with state_dir(settings, name) as state:
                result = localproc_run(settings, payload, state, name, "--no-cache",
                                       sample_rss=True, timeout=900)  # fmt: skip
            assert settings.moto is not None
            uploaded = settings.moto.delete_prefix(out_prefix)
            if not result.ok or uploaded != data.objects:
                section.notes.append(
                    f"A {data.label} run failed ({uploaded} of {data.objects} objects uploaded): "
                    f"{result.failure()}"
                )
                continue
            started = result.first(r"starting \d+ container")
            ended = result.lines[-1].at
            split = started[0].at if started else ended
            peaks["all"].append(float(result.peak_rss or 0))
            peaks["staging"].append(
                float(max((r for t, r in result.rss_samples if t <= split), default=0))
            )
            peaks["upload"].append(
                float(max((r for t, r in result.rss_samples if t > split), default=0))
            )
        peak = median(peaks["all"])
        section.rows.append(
            Row("footprint", f"peak RSS of `localproc run` moving {data.label} in and out",
                mib_text(peak), "trivial job (10 × 1 KiB)", mib_text(base),
                ratio_text(peak, base), f"{len(peaks['all'])}/{len(baseline)}")
        )  # fmt: skip
        section.notes.append(
            f"{data.label}: peak while staging {mib_text(median(peaks['staging']))}, after the "
            f"containers started (running, then uploading) {mib_text(median(peaks['upload']))}."
        )
        if key == "big":
            section.targets.append(
                Target(
                    f"peak memory ≤ 150 MiB while moving {data.label}",
                    mib_text(peak),
                    None if peak is None else peak <= MEMORY_TARGET,
                )
            )
    section.notes.insert(
        0,
        "Summed RSS of the `localproc run` process and its children (the containers are not "
        "its children and are not counted), sampled with psutil every 50 ms; median over "
        f"{repeats} run(s) of each run's peak. Each job stages the data set as a File input "
        "(`--no-cache`, so the bytes go straight from S3 to the staging folder), its container "
        "copies it to the output folder, and localproc uploads it again (EndOfJob).",
    )
    return section
