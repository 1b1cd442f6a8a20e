"""What every benchmark shares: timed subprocesses (with line arrival times and RSS sampling),
the moto S3 server, test data, job payloads, statistics and the rows of the report.

Everything measured runs in a subprocess of its own: localproc as users start it (its console
script), the AWS CLI and the SageMaker SDK from their own virtual environments, moto as a
separate server process. This process only starts, times and samples them.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
IMAGE = "localproc/example-python:bookworm"
BUCKET = "bench"
CACHE_DIR = Path(
    os.environ.get("LOCALPROC_BENCH_CACHE", Path.home() / ".cache" / "localproc-bench")
)
KB = 1000
MiB = 2**20

# Longest any single measured command may take before it is stopped and reported as timed out.
DEFAULT_TIMEOUT = 600.0


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def localproc_argv() -> list[str]:
    """The `localproc` console script of this interpreter's environment, as a user runs it.

    Taken from next to `sys.executable` rather than from PATH, where a version manager's shim
    (pyenv's is a bash script that adds ~0.3 s) may stand in front of it."""
    script = Path(sys.executable).parent / "localproc"
    if script.is_file():
        return [str(script)]
    found = shutil.which("localproc")
    return [found] if found else [sys.executable, "-m", "localproc"]


def aws_env(**extra: str) -> dict[str, str]:
    """The environment of every measured command: dummy credentials, no profile, no config file,
    no instance metadata look-ups, unbuffered Python, no colours."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "LOCALPROC_", "SAGEMAKER_", "BOTO_"))
    }
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        PYTHONUNBUFFERED="1",
        NO_COLOR="1",
    )
    env.update(extra)
    return env


# --- timed subprocesses --------------------------------------------------------------------------


@dataclass
class Line:
    at: float  # time.time() when the line arrived
    stream: str  # "stdout" or "stderr"
    text: str


@dataclass
class Result:
    argv: list[str]
    seconds: float
    returncode: int | None
    lines: list[Line]
    timed_out: bool = False
    peak_rss: int | None = None
    rss_samples: list[tuple[float, int]] = field(default_factory=list)  # (time.time(), bytes)
    started_at: float = 0.0  # time.time() just before the process was created
    cpu_seconds: float | None = None  # user + system CPU of the process and its reaped children

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    @property
    def output(self) -> str:
        return "\n".join(line.text for line in self.lines)

    def first(self, pattern: str | re.Pattern[str]) -> tuple[Line, re.Match[str]] | None:
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        for line in self.lines:
            match = regex.search(line.text)
            if match:
                return line, match
        return None

    def all(self, pattern: str) -> list[tuple[Line, re.Match[str]]]:
        regex = re.compile(pattern)
        return [(line, m) for line in self.lines if (m := regex.search(line.text))]

    def failure(self) -> str:
        """A short description of why the command failed, for the report."""
        what = "timed out" if self.timed_out else f"exit code {self.returncode}"
        tail = [line.text for line in self.lines if line.text.strip()][-6:]
        return f"{what}: " + " / ".join(tail)[-700:]


class RssSampler(threading.Thread):
    """Samples the summed RSS of a process and all its descendants every `interval` seconds."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        import psutil

        try:
            root = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return
        while not self._stop_event.is_set():
            try:
                processes = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            total = 0
            for process in processes:
                with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                    total += process.memory_info().rss
            if total:
                self.samples.append((time.time(), total))
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)

    @property
    def peak(self) -> int | None:
        return max((rss for _, rss in self.samples), default=None)


def run(
    argv: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    sample_rss: bool = False,
    on_line: Callable[[Line], None] | None = None,
) -> Result:
    """Run `argv` to its end and time it (wall clock, from just before the process is created
    until it has exited). Output lines are kept with their arrival times. On timeout the process
    gets SIGTERM (localproc stops its job and cleans up), then SIGKILL for its process group."""
    lines: list[Line] = []
    lock = threading.Lock()

    def reader(stream: Any, name: str) -> None:
        for raw in iter(stream.readline, b""):
            line = Line(time.time(), name, raw.decode("utf-8", "replace").rstrip("\r\n"))
            with lock:
                lines.append(line)
            if on_line is not None:
                on_line(line)
        stream.close()

    # Measured commands run one at a time, so the change in this process's reaped-children usage
    # is the command's own CPU time (its descendants' included, Docker's containers not).
    usage_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started_at = time.time()
    started = time.perf_counter()
    process = subprocess.Popen(
        argv,
        env=env if env is not None else aws_env(),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: a timeout can end all of it, only it
    )
    sampler = RssSampler(process.pid) if sample_rss else None
    if sampler is not None:
        sampler.start()
    readers = [
        threading.Thread(target=reader, args=(process.stdout, "stdout"), daemon=True),
        threading.Thread(target=reader, args=(process.stderr, "stderr"), daemon=True),
    ]
    for thread in readers:
        thread.start()
    timed_out = False
    try:
        returncode: int | None = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        returncode = stop_process(process)
    seconds = time.perf_counter() - started
    usage_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (usage_after.ru_utime - usage_before.ru_utime) + (
        usage_after.ru_stime - usage_before.ru_stime
    )
    if sampler is not None:
        sampler.stop()
    for thread in readers:
        thread.join(timeout=10)
    lines.sort(key=lambda line: line.at)
    return Result(
        argv,
        seconds,
        returncode,
        lines,
        timed_out,
        sampler.peak if sampler else None,
        sampler.samples if sampler else [],
        started_at,
        cpu,
    )


def stop_process(process: subprocess.Popen[bytes], grace: float = 30.0) -> int | None:
    """SIGTERM to the process, then SIGKILL to its own process group after `grace` seconds."""
    if process.poll() is not None:
        return process.returncode
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            return process.wait(timeout=10)
    return None


# --- moto ----------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MotoServer:
    """moto's S3 (and every other service) as a separate server process on 127.0.0.1."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self._client: Any = None

    def start(self, timeout: float = 60.0) -> None:
        log_file = (self.workdir / "moto.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log_file.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto server exited: {(self.workdir / 'moto.log').read_text()}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/moto-api/data.json", timeout=2):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"moto server did not answer on {self.endpoint} within {timeout} s")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, grace=10)
            self.process = None

    def reset(self) -> None:
        """Forget every bucket and object (moto keeps them in memory)."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=60):
            pass

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.client(
                "s3",
                endpoint_url=self.endpoint,
                region_name="us-east-1",
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
                config=Config(max_pool_connections=32, retries={"mode": "standard"}),
            )
        return self._client

    def ensure_bucket(self, bucket: str = BUCKET) -> None:
        with contextlib.suppress(self.client.exceptions.BucketAlreadyOwnedByYou):
            self.client.create_bucket(Bucket=bucket)

    def upload_dir(self, folder: Path, prefix: str, bucket: str = BUCKET) -> int:
        """Upload every file below `folder` under `prefix`; returns the object count."""
        from boto3.s3.transfer import TransferConfig

        self.ensure_bucket(bucket)
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        config = TransferConfig(max_concurrency=10)

        def put(path: Path) -> None:
            key = prefix + path.relative_to(folder).as_posix()
            self.client.upload_file(str(path), bucket, key, Config=config)

        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(put, files))
        return len(files)

    def keys(self, prefix: str, bucket: str = BUCKET) -> list[str]:
        found: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix
        ):
            found.extend(item["Key"] for item in page.get("Contents", []))
        return found

    def delete_prefix(self, prefix: str, bucket: str = BUCKET) -> int:
        keys = self.keys(prefix, bucket)
        for start in range(0, len(keys), 1000):
            chunk = keys[start : start + 1000]
            self.client.delete_objects(
                Bucket=bucket, Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True}
            )
        return len(keys)


# --- test data -----------------------------------------------------------------------------------


def make_small_files(folder: Path, count: int, size: int, name: str = "part") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        (folder / f"{name}-{index:05d}.bin").write_bytes(os.urandom(size))
    return folder


def make_big_file(path: Path, size: int) -> Path:
    """`size` bytes: one random MiB repeated (S3 and the tools never compress, so this moves
    exactly like random data and costs no CPU to make)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    block = os.urandom(MiB)
    with path.open("wb") as handle:
        written = 0
        while written < size:
            chunk = block[: min(MiB, size - written)]
            handle.write(chunk)
            written += len(chunk)
    return path


def folder_bytes(folder: Path) -> tuple[int, int]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


# --- job payloads --------------------------------------------------------------------------------


def job_payload(
    name: str,
    entrypoint: list[str],
    inputs: list[tuple[str, str, str]],
    outputs: list[tuple[str, str, str]],
    instance_count: int = 1,
    instance_type: str = "ml.t3.medium",
    upload_mode: str = "EndOfJob",
    max_runtime: int = 1800,
    volume_gb: int = 30,
) -> dict[str, Any]:
    """A CreateProcessingJob request; inputs are (name, s3 uri, local path), outputs the same."""
    request: dict[str, Any] = {
        "ProcessingJobName": name,
        "RoleArn": "arn:aws:iam::123456789012:role/LocalprocBenchmark",
        "AppSpecification": {"ImageUri": IMAGE, "ContainerEntrypoint": entrypoint},
        "ProcessingResources": {
            "ClusterConfig": {
                "InstanceCount": instance_count,
                "InstanceType": instance_type,
                "VolumeSizeInGB": volume_gb,
            }
        },
        "ProcessingInputs": [
            {
                "InputName": input_name,
                "S3Input": {
                    "S3Uri": uri,
                    "LocalPath": local_path,
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                },
            }
            for input_name, uri, local_path in inputs
        ],
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": output_name,
                    "S3Output": {
                        "S3Uri": uri,
                        "LocalPath": local_path,
                        "S3UploadMode": upload_mode,
                    },
                }
                for output_name, uri, local_path in outputs
            ]
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime},
    }
    if not outputs:
        del request["ProcessingOutputConfig"]
    return request


def write_json(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))
    return path


# `localproc run` prints "localproc: staging N input object(s) from …" just before it starts
# downloading, and writes each instance's config files just after the last object is in place.
STAGING_STARTS = re.compile(r"staging (\d+) input object")
# Should localproc ever print its own staging time ("staged … in 1.23 s"), that is used instead.
STAGING_TOOK = re.compile(r"\bstag(?:ed|ing)\b.*?\bin ([0-9.]+) ?(ms|s)\b")


def staging_seconds(result: Result, job_dir: Path) -> tuple[float | None, str]:
    """The staging time of a `localproc run`, and how it was measured."""
    took = result.first(STAGING_TOOK)
    if took is not None:
        value = float(took[1].group(1))
        return (value / 1000 if took[1].group(2) == "ms" else value), "localproc's own figure"
    start = result.first(STAGING_STARTS)
    config = job_dir / "algo-1" / "config" / "resourceconfig.json"
    if start is not None and config.exists():
        return config.stat().st_mtime - start[0].at, "log line → config files written"
    return None, "no staging markers found"


# --- docker --------------------------------------------------------------------------------------


def docker_names(kind: str = "container") -> set[str]:
    argv = (
        ["docker", "ps", "-a", "--format", "{{.Names}}"]
        if kind == "container"
        else ["docker", "network", "ls", "--format", "{{.Name}}"]
    )
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    return {name for name in done.stdout.split() if name}


def remove_docker(kind: str, names: set[str]) -> None:
    if not names:
        return
    argv = ["docker", "rm", "-f"] if kind == "container" else ["docker", "network", "rm"]
    subprocess.run([*argv, *sorted(names)], capture_output=True, timeout=120)


def docker_version() -> str:
    done = subprocess.run(
        ["docker", "version", "--format", "{{.Server.Version}}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.stdout.strip() or f"unknown ({done.stderr.strip()[:200]})"


# --- statistics and report rows ------------------------------------------------------------------


def median(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def percentile(values: list[float], fraction: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def seconds_text(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:.2f} s"


def mib_text(value: float | None) -> str:
    return "—" if value is None else f"{value / MiB:.0f} MiB"


def ratio_text(value: float | None, baseline: float | None, unit: str = "×") -> str:
    if value is None or not baseline:
        return "—"
    return f"{value / baseline:.2f}{unit}"


@dataclass
class Row:
    """One line of the results table: a median and its baseline measured in the same run."""

    benchmark: str
    case: str
    value: str
    baseline_name: str = ""
    baseline: str = ""
    ratio: str = ""
    runs: str = ""


@dataclass
class Target:
    description: str
    measured: str
    met: bool | None  # None: could not be measured


@dataclass
class Section:
    name: str
    title: str
    rows: list[Row] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class Settings:
    quick: bool
    repeats: int  # repeats of the slow whole-job benchmarks
    workdir: Path
    run_id: str
    moto: MotoServer | None = None
    keep: dict[str, Any] = field(default_factory=dict)  # shared lazily-made data sets

    def scaled(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    @property
    def prefix(self) -> str:
        """Start of every job and container name of this run, so the final sweep finds them."""
        return f"bench{self.run_id}"


@contextlib.contextmanager
def state_dir(settings: Settings, label: str) -> Iterator[Path]:
    """A fresh localproc state dir, removed afterwards."""
    path = settings.workdir / "state" / f"{label}-{time.monotonic_ns()}"
    path.mkdir(parents=True)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def localproc_run(
    settings: Settings,
    payload_path: Path,
    state: Path,
    name: str,
    *extra: str,
    sample_rss: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    on_line: Callable[[Line], None] | None = None,
) -> Result:
    assert settings.moto is not None
    return run(
        [
            *localproc_argv(),
            "run",
            str(payload_path),
            "--name",
            name,
            "--state-dir",
            str(state),
            "--s3-endpoint-url",
            settings.moto.endpoint,
            *extra,
        ],
        sample_rss=sample_rss,
        timeout=timeout,
        on_line=on_line,
    )
