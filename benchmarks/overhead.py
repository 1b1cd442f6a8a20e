"""1. Overhead of a trivial job (10 small inputs, one output) against a plain `docker run --rm`
and SageMaker SDK local mode; 2. the same job scaled out to 1, 2, 4 and 8 instances."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

from benchmarks import envs
from benchmarks.common import (
    BUCKET,
    IMAGE,
    REPO,
    STAGING_STARTS,
    Line,
    Result,
    Row,
    Section,
    Settings,
    Target,
    aws_env,
    docker_names,
    job_payload,
    localproc_run,
    log,
    make_small_files,
    median,
    ratio_text,
    remove_docker,
    run,
    seconds_text,
    state_dir,
    stop_process,
    write_json,
)

INPUT_PATH = "/opt/ml/processing/input/data"
OUTPUT_PATH = "/opt/ml/processing/output"
TRIVIAL_COMMAND = f"cat {INPUT_PATH}/* | wc -c > {OUTPUT_PATH}/bytes.txt"
TRIVIAL_PREFIX = "trivial/input/"
# SDK local mode names its containers RANDOM10-algo-N-RANDOM5 (docker-compose project + host).
SDK_CONTAINER = re.compile(r"^[a-z0-9]{10}-algo-\d+-[a-z0-9]{5}$")


def trivial_inputs(settings: Settings) -> Path:
    """The 10 small input objects, once per benchmark run: in S3 and in a local folder (for the
    plain `docker run`, which has no S3)."""
    if "trivial" not in settings.keep:
        assert settings.moto is not None
        folder = make_small_files(settings.workdir / "trivial-input", 10, 1024)
        settings.moto.upload_dir(folder, TRIVIAL_PREFIX)
        settings.keep["trivial"] = folder
    return Path(settings.keep["trivial"])


def trivial_job(settings: Settings, name: str, instances: int = 1, command: str = TRIVIAL_COMMAND):
    return job_payload(
        name,
        ["sh", "-c", command],
        [("data", f"s3://{BUCKET}/{TRIVIAL_PREFIX}", INPUT_PATH)],
        [("result", f"s3://{BUCKET}/trivial/output/{name}", OUTPUT_PATH)],
        instance_count=instances,
    )


class _Names:
    def __init__(self, settings: Settings, label: str) -> None:
        self.settings = settings
        self.label = label
        self.count = 0

    def __call__(self) -> str:
        self.count += 1
        return f"{self.settings.prefix}-{self.label}-{self.count}"


def _localproc_trivial(settings: Settings, name: str, *extra: str, instances: int = 1,
                       command: str = TRIVIAL_COMMAND) -> Result:  # fmt: skip
    payload = write_json(
        settings.workdir / "payloads" / f"{name}.json",
        trivial_job(settings, name, instances, command),
    )
    with state_dir(settings, name) as state:
        result = localproc_run(settings, payload, state, name, *extra, timeout=300)
    assert settings.moto is not None
    if result.ok and not settings.moto.keys(f"trivial/output/{name}/"):
        _missing_output(result)
    return result


def _missing_output(result: Result) -> None:
    result.returncode = -1
    result.lines.append(Line(time.time(), "bench", "exited 0 but its output is not in S3"))


def _docker_trivial(settings: Settings, name: str, inputs: Path) -> Result:
    out = settings.workdir / "docker-out" / name
    out.mkdir(parents=True)
    return run(
        [
            "docker",
            "run",
            "--rm",
            "--name",
            name,
            "-v",
            f"{inputs}:{INPUT_PATH}",
            "-v",
            f"{out}:{OUTPUT_PATH}",
            "--entrypoint",
            "sh",
            IMAGE,
            "-c",
            TRIVIAL_COMMAND,
        ],  # fmt: skip
        timeout=300,
    )


def _sdk_trivial(settings: Settings, python: Path, index: int) -> Result:
    assert settings.moto is not None
    before = docker_names()
    output = f"trivial/sdk-output/{settings.run_id}-{index}"
    result = run(
        [
            str(python),
            str(REPO / "benchmarks" / "sdk_job.py"),
            "--s3-endpoint-url",
            settings.moto.endpoint,
            "--image",
            IMAGE,
            "--input",
            f"s3://{BUCKET}/{TRIVIAL_PREFIX}",
            "--input-path",
            INPUT_PATH,
            "--output",
            f"s3://{BUCKET}/{output}",
            "--output-path",
            OUTPUT_PATH,
            "--command",
            TRIVIAL_COMMAND,
            "--bucket",
            BUCKET,
        ],  # fmt: skip
        env=aws_env(AWS_ENDPOINT_URL_S3=settings.moto.endpoint),
        cwd=settings.workdir,
        timeout=600,
    )
    # Local mode leaves its exited containers behind: remove exactly the ones this run made.
    remove_docker("container", {n for n in docker_names() - before if SDK_CONTAINER.match(n)})
    if result.ok and not settings.moto.keys(output + "/"):
        _missing_output(result)
    return result


def run_overhead(settings: Settings) -> Section:
    section = Section("overhead", "1. Overhead of a trivial job")
    inputs = trivial_inputs(settings)
    names = _Names(settings, "trivial")
    repeats = settings.repeats

    sdk_python: Path | None = None
    sdk_problem = None
    try:
        compose = envs.ensure_compose()
        sdk_python = envs.sagemaker_python()
        section.notes.append(
            f"SDK local mode: `{envs.SAGEMAKER_REQUIREMENT}` in its own venv, Compose: {compose}."
        )
    except envs.EnvironmentUnavailable as exc:
        sdk_problem = f"SDK local mode could not be installed: {exc}"

    times: dict[str, list[float]] = {"docker": [], "localproc": [], "sdk": []}
    cpu: dict[str, list[float]] = {kind: [] for kind in times}
    localproc_runs: list[Result] = []
    failures: dict[str, str] = {}
    sdk_index = 0

    def once(kind: str, measured: bool) -> None:
        nonlocal sdk_index, sdk_problem
        if kind == "docker":
            result = _docker_trivial(settings, names(), inputs)
        elif kind == "localproc":
            result = _localproc_trivial(settings, names())
        else:
            if sdk_python is None or (sdk_problem and not times["sdk"]):
                return
            sdk_index += 1
            result = _sdk_trivial(settings, sdk_python, sdk_index)
        if result.ok:
            if measured:
                times[kind].append(result.seconds)
                if result.cpu_seconds is not None:
                    cpu[kind].append(result.cpu_seconds)
                if kind == "localproc":
                    localproc_runs.append(result)
        else:
            failures[kind] = result.failure()
            if kind == "sdk" and not times["sdk"]:
                sdk_problem = f"SDK local mode failed: {result.failure()}"

    log("overhead: warm-up runs (not counted)")
    for kind in times:
        once(kind, measured=False)
    for repeat in range(repeats):
        log(f"overhead: repeat {repeat + 1}/{repeats}")
        for kind in times:
            once(kind, measured=True)

    docker, localproc, sdk = (median(times[k]) for k in ("docker", "localproc", "sdk"))
    section.rows.append(
        Row("overhead", "trivial job: `localproc run` vs plain `docker run --rm`",
            seconds_text(localproc), "`docker run --rm`", seconds_text(docker),
            ratio_text(localproc, docker), f"{len(times['localproc'])}/{len(times['docker'])}")
    )  # fmt: skip
    section.rows.append(
        Row("overhead", "trivial job: SDK local mode vs `localproc run`",
            seconds_text(sdk) if sdk else "did not run", "`localproc run`",
            seconds_text(localproc), ratio_text(sdk, localproc) + (" slower" if sdk else ""),
            f"{len(times['sdk'])}/{len(times['localproc'])}")
    )  # fmt: skip
    section.targets.append(
        Target(
            "trivial job ≤ 2× plain `docker run`",
            f"{ratio_text(localproc, docker)} ({seconds_text(localproc)} vs "
            f"{seconds_text(docker)})",
            None if localproc is None or docker is None else localproc <= 2 * docker,
        )
    )
    section.targets.append(
        Target(
            "trivial job ≥ 4× faster than SDK local mode",
            f"{ratio_text(sdk, localproc)} ({seconds_text(sdk)} vs {seconds_text(localproc)})"
            if sdk
            else f"not measured: {sdk_problem or failures.get('sdk', 'no successful run')}",
            None if sdk is None or localproc is None else sdk >= 4 * localproc,
        )
    )
    section.notes.append(
        f"Whole-process wall time, median of {repeats} interleaved repeats after one unmeasured "
        "warm-up of each. The job: 10 input objects of 1 KiB, the command "
        f"`sh -c '{TRIVIAL_COMMAND}'`, one output file. `localproc run` uses a fresh "
        "`--state-dir` per run (cold input cache) and the moto endpoint; the plain `docker run` "
        "bind-mounts the same 10 files from a local folder; SDK local mode "
        "(`Processor(instance_type='local').run()`, defaults `wait=True, logs=True`) reads them "
        "from the same moto endpoint (`LocalSession(s3_endpoint_url=…)`), telemetry opted out."
    )
    phases = _phases(localproc_runs)
    if phases:
        section.notes.append(
            "Where a trivial `localproc run` spends its time (medians, from the arrival of its "
            f"own output lines): {phases}. CPU time, user + system (medians): `localproc run` "
            f"{seconds_text(median(cpu['localproc']))}, `docker run` (the CLI only) "
            f"{seconds_text(median(cpu['docker']))}, SDK local mode (with docker-compose) "
            f"{seconds_text(median(cpu['sdk']))}."
        )
    if sdk_problem:
        section.notes.append(sdk_problem)
    for kind, failure in failures.items():
        section.notes.append(f"A `{kind}` run failed: {failure}")
    return section


def _phases(results: list[Result]) -> str:
    marks: dict[str, list[float]] = {"start": [], "stage": [], "run": [], "exit": []}
    for result in results:
        staging = result.first(STAGING_STARTS)
        starting = result.first(r"starting \d+ container")
        if staging is None or starting is None or not result.lines:
            continue
        last = result.lines[-1].at
        marks["start"].append(staging[0].at - result.started_at)
        marks["stage"].append(starting[0].at - staging[0].at)
        marks["run"].append(last - starting[0].at)
        marks["exit"].append(result.started_at + result.seconds - last)
    if not marks["start"]:
        return ""
    return (
        f"{seconds_text(median(marks['start']))} from the start to its `staging` line "
        "(interpreter and imports, validation, S3 listing, Docker checks, leftover sweep), "
        f"{seconds_text(median(marks['stage']))} from there to `starting 1 container(s)` "
        "(staging, config files, network and container creation), "
        f"{seconds_text(median(marks['run']))} from there to its last line (the container "
        "runs and ends, containers and network are removed, the output is uploaded, the job "
        f"recorded), {seconds_text(median(marks['exit']))} from its last line until the "
        "process has exited (interpreter shutdown)"
    )


def _docker_parallel(settings: Settings, names: _Names, count: int, inputs: Path) -> float | None:
    """`count` plain `docker run --rm` of the trivial command started at once: what Docker itself
    needs for that many containers on this host. Wall time until the last one has exited."""
    started = time.perf_counter()
    processes = []
    for _ in range(count):
        name = names()
        out = settings.workdir / "docker-out" / name
        out.mkdir(parents=True)
        processes.append(
            subprocess.Popen(
                ["docker", "run", "--rm", "--name", name, "-v", f"{inputs}:{INPUT_PATH}",
                 "-v", f"{out}:{OUTPUT_PATH}", "--entrypoint", "sh", IMAGE, "-c",
                 TRIVIAL_COMMAND],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
        )  # fmt: skip
    codes = []
    for process in processes:
        try:
            codes.append(process.wait(timeout=300))
        except subprocess.TimeoutExpired:
            stop_process(process)
            codes.append(None)
    seconds = time.perf_counter() - started
    return seconds if all(code == 0 for code in codes) else None


def run_scaleout(settings: Settings) -> Section:
    section = Section("scaleout", "2. Scale-out")
    inputs = trivial_inputs(settings)
    names = _Names(settings, "scale")
    counts = (1, 2, 4, 8)
    command = f"cat {INPUT_PATH}/* | wc -c > {OUTPUT_PATH}/bytes-$(hostname).txt"
    times: dict[int, list[float]] = {count: [] for count in counts}
    docker: dict[int, list[float]] = {count: [] for count in counts}
    failures: dict[int, str] = {}
    repeats = settings.repeats
    log("scale-out: warm-up runs (not counted)")
    _localproc_trivial(settings, names(), "--no-resource-limits", instances=8, command=command)
    _docker_parallel(settings, names, 8, inputs)
    for repeat in range(repeats):
        log(f"scale-out: repeat {repeat + 1}/{repeats}")
        for count in counts:
            result = _localproc_trivial(
                settings, names(), "--no-resource-limits", instances=count, command=command
            )
            if result.ok:
                times[count].append(result.seconds)
            else:
                failures[count] = result.failure()
            plain = _docker_parallel(settings, names, count, inputs)
            if plain is not None:
                docker[count].append(plain)
    one, docker_one = median(times[1]), median(docker[1])
    for count in counts[1:]:
        value = median(times[count])
        section.rows.append(
            Row("scale-out", f"trivial job, InstanceCount {count}", seconds_text(value),
                "InstanceCount 1", seconds_text(one), ratio_text(value, one),
                f"{len(times[count])}/{len(times[1])}")
        )  # fmt: skip
    for count in counts[1:]:
        value = median(docker[count])
        section.rows.append(
            Row("scale-out", f"Docker itself: {count} plain `docker run --rm` at once",
                seconds_text(value), "one `docker run --rm`", seconds_text(docker_one),
                ratio_text(value, docker_one), f"{len(docker[count])}/{len(docker[1])}")
        )  # fmt: skip
    eight, docker_eight = median(times[8]), median(docker[8])
    section.targets.append(
        Target(
            "8 instances ≤ 1.5× one instance",
            f"{ratio_text(eight, one)} ({seconds_text(eight)} vs {seconds_text(one)}); Docker "
            f"itself, 8 plain `docker run` at once: {ratio_text(docker_eight, docker_one)} "
            f"({seconds_text(docker_eight)} vs {seconds_text(docker_one)})",
            None if eight is None or one is None else eight <= 1.5 * one,
        )
    )
    if eight is not None and one is not None and docker_eight is not None and docker_one:
        section.notes.append(
            f"Going from 1 to 8 instances adds {seconds_text(eight - one)} to `localproc run`; "
            f"going from 1 to 8 plain `docker run` at once adds "
            f"{seconds_text(docker_eight - docker_one)}: what Docker itself needs to create, "
            "start and remove 8 containers on this host."
        )
    section.notes.append(
        f"Whole-process `localproc run --no-resource-limits` wall time, median of {repeats} "
        "interleaved repeats. Every instance runs the trivial job's command on all 10 objects "
        "(FullyReplicated) and writes its own output file. Baseline for the host: the same "
        "number of plain `docker run --rm` of the trivial command started at once (no S3, "
        "files bind-mounted), timed until the last exits. Host: 2 cores, so 8 containers share "
        "2 CPUs."
    )
    for count, failure in failures.items():
        section.notes.append(f"A run with InstanceCount {count} failed: {failure}")
    return section
