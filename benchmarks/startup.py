"""7. Start-up: `localproc --help` and `localproc validate` against `python -c pass`."""

from __future__ import annotations

import json
import sys

from benchmarks.common import (
    REPO,
    Row,
    Section,
    Settings,
    Target,
    localproc_argv,
    median,
    ratio_text,
    run,
    seconds_text,
)

HEAVY_MODULES = ("boto3", "botocore", "s3transfer", "docker", "requests", "rich", "psutil")

# Runs `localproc --help` in-process and reports which heavy libraries it imported.
_PROBE = f"""
import json, sys
sys.argv = ["localproc", "--help"]
from localproc.cli.app import main
try:
    main()
except SystemExit:
    pass
print("HEAVY=" + json.dumps([m for m in {HEAVY_MODULES!r} if m in sys.modules]), file=sys.stderr)
"""

HELP_TARGET = 0.150


def run_startup(settings: Settings) -> Section:
    section = Section("startup", "7. Start-up")
    repeats = settings.scaled(20, 5)
    payload = REPO / "fixtures" / "jobs" / "quickstart.json"
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "localproc --help": [*localproc_argv(), "--help"],
        "localproc validate fixtures/jobs/quickstart.json": [
            *localproc_argv(),
            "validate",
            str(payload),
        ],
    }
    times: dict[str, list[float]] = {label: [] for label in commands}
    failures: dict[str, str] = {}
    for argv in commands.values():  # warm the page cache once, not counted
        run(argv, timeout=60)
    for _ in range(repeats):  # interleaved, so load changes hit all three alike
        for label, argv in commands.items():
            result = run(argv, timeout=60)
            if result.ok:
                times[label].append(result.seconds)
            else:
                failures[label] = result.failure()
    baseline = median(times["python -c pass"])
    for label in ("localproc --help", "localproc validate fixtures/jobs/quickstart.json"):
        value = median(times[label])
        section.rows.append(
            Row(
                "start-up",
                f"`{label}`",
                seconds_text(value),
                "`python -c pass`",
                seconds_text(baseline),
                ratio_text(value, baseline),
                f"{len(times[label])}",
            )
        )
    help_median = median(times["localproc --help"])
    if help_median is not None and baseline is not None:
        section.notes.append(
            f"`localproc --help` costs {seconds_text(help_median - baseline)} more than starting "
            f"the interpreter (`python -c pass`: {seconds_text(baseline)} here; this host's "
            "site-packages run `.pth` start-up hooks, e.g. an editable-install finder, on every "
            "Python start)."
        )
    section.targets.append(
        Target(
            "`localproc --help` ≤ 150 ms",
            seconds_text(help_median),
            None if help_median is None else help_median <= HELP_TARGET,
        )
    )
    probe = run([sys.executable, "-c", _PROBE], timeout=60)
    heavy = probe.first(r"^HEAVY=(.*)$")
    if heavy is not None:
        loaded = json.loads(heavy[1].group(1))
        section.notes.append(
            "Heavy libraries imported by `localproc --help`: "
            + (", ".join(f"`{m}`" for m in loaded) if loaded else "none")
            + f" (checked: {', '.join(HEAVY_MODULES)})."
        )
    section.notes.append(
        f"Medians of {repeats} runs each, interleaved, after one unmeasured warm-up run; the "
        "console script next to the interpreter is run directly (not through a version "
        "manager's shim)."
    )
    for label, failure in failures.items():
        section.notes.append(f"`{label}` failed at least once: {failure}")
    return section
