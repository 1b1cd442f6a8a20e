"""Run localproc's benchmarks and write the results table to docs/benchmarks.md.

    python benchmarks/run.py [--quick] [--only NAME...] [--repeats N] [--output PATH]

Benchmarks (issue 9): startup, overhead, scaleout, rerun, continuous, transfer, footprint; (issue
14) engines. Each figure is a median over repeats, set against a baseline measured in the same
run. `--quick` makes a fast smoke run: fewer repeats, smaller data. Everything the run starts (the
moto server, its containers, temp folders) is stopped or removed when it ends, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (  # noqa: E402
    REPO,
    MotoServer,
    Section,
    Settings,
    docker_names,
    docker_version,
    log,
    remove_docker,
)

BENCHMARKS: dict[str, tuple[str, bool]] = {
    # name: (module:function, needs S3)
    "startup": ("benchmarks.startup:run_startup", False),
    "overhead": ("benchmarks.overhead:run_overhead", True),
    "scaleout": ("benchmarks.overhead:run_scaleout", True),
    "rerun": ("benchmarks.rerun:run_rerun", True),
    "continuous": ("benchmarks.continuous:run_continuous", True),
    "transfer": ("benchmarks.transfer:run_transfer", True),
    "footprint": ("benchmarks.transfer:run_footprint", True),
    "engines": ("benchmarks.engines:run_engines", True),
}


def _load(target: str) -> Callable[[Settings], Section]:
    module_name, _, function = target.partition(":")
    module = __import__(module_name, fromlist=[function])
    return getattr(module, function)  # type: ignore[no-any-return]


def machine() -> dict[str, str]:
    import psutil

    load = os.getloadavg()
    return {
        "CPUs": str(os.cpu_count()),
        "memory": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "Docker": docker_version(),
        "Python": platform.python_version(),
        "kernel": platform.release(),
        "load": f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}",
        "containers": str(len(_running_containers())),
        "code": code_version(),
    }


def code_version() -> str:
    """The localproc source being measured: commit plus the files changed on top of it (others
    may be editing the work tree while the benchmark runs)."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                              timeout=60)  # fmt: skip
        return done.stdout.strip()

    # The last commit that changed localproc itself: commits of docs or benchmarks made while
    # the benchmark runs do not change what is measured.
    commit = git("log", "-1", "--format=%h", "--", "localproc", "pyproject.toml") or "unknown"
    changed = [line[3:] for line in git("status", "--porcelain", "--", "localproc",
                                        "pyproject.toml").splitlines()]  # fmt: skip
    return f"`{commit}`" + (
        f" plus uncommitted changes to {', '.join(f'`{c}`' for c in changed)}" if changed else ""
    )


def library_versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for name in ("boto3", "s3transfer", "docker", "typer", "moto"):
        with contextlib.suppress(PackageNotFoundError):
            found.append(f"{name} {version(name)}")
    return ", ".join(found)


def _running_containers() -> list[str]:
    done = subprocess.run(
        ["docker", "ps", "--format", "{{.Names}}"], capture_output=True, text=True, timeout=60
    )
    return done.stdout.split()


def render(command: str, started: datetime, info: dict[str, str], end_info: dict[str, str],
           sections: list[Section], seconds: float) -> str:  # fmt: skip
    lines = [
        "# Benchmarks",
        "",
        f"Produced by `{command}` on {started.strftime('%Y-%m-%d %H:%M UTC')} in "
        f"{seconds / 60:.1f} min.",
        "",
        f"Machine: {info['CPUs']} CPUs, {info['memory']} memory, Docker {info['Docker']}, "
        f"Python {info['Python']}, Linux {info['kernel']}. Load average (1/5/15 min) at the "
        f"start {info['load']}, at the end {end_info['load']}; containers of others running at "
        f"the start: {info['containers']}, at the end: {end_info['containers']} (the host was "
        "shared: figures move with its load, which is why every ratio uses a baseline measured "
        "in the same run, interleaved with it).",
        "",
        f"localproc measured: {info['code']} at the start"
        + (
            "; unchanged at the end."
            if end_info["code"] == info["code"]
            else f"; {end_info['code']} at the end (the code changed during the run)."
        )
        + f" Libraries: {library_versions()}.",
        "",
        "S3 is moto's server (`python -m moto.server`) on 127.0.0.1, a separate process started "
        "by the benchmark; AWS credentials are dummies.",
        "",
        "## Targets",
        "",
        "| target | measured | met? |",
        "|---|---|---|",
    ]
    for section in sections:
        for target in section.targets:
            verdict = {True: "**met**", False: "**not met**", None: "not measured"}[target.met]
            lines.append(f"| {target.description} | {target.measured} | {verdict} |")
    lines += [
        "",
        "## Results",
        "",
        "Medians; ratio = localproc (or the measured case) ÷ baseline. "
        "runs = successful measured runs (case/baseline).",
        "",
        "| benchmark | case | median | baseline | baseline median | ratio | runs |",
        "|---|---|---|---|---|---|---|",
    ]
    for section in sections:
        for row in section.rows:
            lines.append(
                f"| {row.benchmark} | {row.case} | {row.value} | {row.baseline_name} | "
                f"{row.baseline} | {row.ratio} | {row.runs} |"
            )
    lines += ["", "## How each was measured", ""]
    for section in sections:
        lines.append(f"### {section.title} ({section.seconds:.0f} s)")
        lines.append("")
        lines += [f"- {note}" for note in section.notes]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, smaller data")
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), metavar="NAME",
                        help=f"run only these: {', '.join(BENCHMARKS)}")  # fmt: skip
    parser.add_argument("--repeats", type=int, help="repeats of the whole-job benchmarks "
                        "(default 5, --quick 2)")  # fmt: skip
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "benchmarks.md",
                        help="where the markdown goes (default docs/benchmarks.md)")  # fmt: skip
    args = parser.parse_args(argv)
    names = args.only or list(BENCHMARKS)
    command = "python benchmarks/run.py" + (" " + " ".join(sys.argv[1:]) if sys.argv[1:] else "")

    started_at = datetime.now(timezone.utc)
    started = time.monotonic()
    info = machine()
    workdir = Path(tempfile.mkdtemp(prefix="localproc-bench-"))
    settings = Settings(
        quick=args.quick,
        repeats=args.repeats or (2 if args.quick else 5),
        workdir=workdir,
        run_id=secrets.token_hex(3),
    )
    networks_before = docker_names("network")
    sections: list[Section] = []
    try:
        if any(BENCHMARKS[name][1] for name in names):
            settings.moto = MotoServer(workdir)
            settings.moto.start()
            log(f"moto S3 on {settings.moto.endpoint} (pid {settings.moto.process.pid})")  # type: ignore[union-attr]
        for name in names:
            log(f"== {name}")
            began = time.monotonic()
            try:
                section = _load(BENCHMARKS[name][0])(settings)
            except Exception:  # noqa: BLE001 - one broken benchmark must not lose the others
                section = Section(name, name)
                section.notes.append("The benchmark itself failed:\n\n```\n"
                                     + traceback.format_exc()[-2000:] + "```")  # fmt: skip
                log(f"{name} failed:\n{traceback.format_exc()}")
            section.seconds = time.monotonic() - began
            sections.append(section)
    except KeyboardInterrupt:
        log("interrupted: cleaning up; the report covers the benchmarks that finished")
    finally:
        _clean_up(settings, networks_before)
    report = render(command, started_at, info, machine(), sections, time.monotonic() - started)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report)
    print(report)
    log(f"written to {args.output}")
    return 0


def _clean_up(settings: Settings, networks_before: set[str]) -> None:
    if settings.moto is not None:
        settings.moto.stop()
    # Normally nothing is left: localproc removes its containers and networks, `docker run` has
    # --rm, SDK runs are cleaned after each. A run stopped on timeout may leave some: every name
    # carries this run's prefix. SDK local mode's network is removed if this run made it.
    remove_docker("container", {n for n in docker_names() if settings.prefix in n})
    leftovers = {n for n in docker_names("network") if settings.prefix in n}
    if "sagemaker-local" not in networks_before:
        leftovers.add("sagemaker-local")
    remove_docker("network", leftovers & docker_names("network"))
    shutil.rmtree(settings.workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
