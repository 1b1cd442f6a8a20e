"""4. Re-run: the same job twice with unchanged inputs, same state dir (so the same input cache),
different names: the second run's staging time against the first's."""

from __future__ import annotations

from benchmarks.common import (
    Row,
    Section,
    Settings,
    Target,
    job_payload,
    localproc_run,
    log,
    median,
    ratio_text,
    seconds_text,
    staging_seconds,
    state_dir,
    write_json,
)
from benchmarks.datasets import dataset
from benchmarks.overhead import TRIVIAL_PREFIX, trivial_inputs

TARGET_FRACTION = 0.10


def run_rerun(settings: Settings) -> Section:
    section = Section("rerun", "4. Re-run with unchanged inputs")
    trivial_inputs(settings)
    many, big = dataset(settings, "many"), dataset(settings, "big")
    cases = {
        "10 × 1 KiB": (
            [("data", f"s3://bench/{TRIVIAL_PREFIX}", "/opt/ml/processing/input/data")],
            settings.scaled(5, 2),
        ),
        f"{many.label} + {big.label}": (
            [
                ("many", many.uri, "/opt/ml/processing/input/many"),
                ("big", big.uri, "/opt/ml/processing/input/big"),
            ],
            settings.scaled(3, 1),
        ),
    }
    methods: set[str] = set()
    for case_index, (label, (inputs, repeats)) in enumerate(cases.items()):
        staging: dict[str, list[float]] = {"first": [], "second": []}
        wall: dict[str, list[float]] = {"first": [], "second": []}
        for index in range(repeats):
            log(f"re-run {label}: pair {index + 1}/{repeats}")
            with state_dir(settings, f"rerun-{index}") as state:
                for which in ("first", "second"):
                    name = f"{settings.prefix}-rerun-{case_index}-{index}-{which}"
                    payload = write_json(
                        settings.workdir / "payloads" / f"{name}.json",
                        job_payload(name, ["true"], inputs, []),
                    )
                    result = localproc_run(settings, payload, state, name, timeout=900)
                    if not result.ok:
                        section.notes.append(f"A {which} run of {label} failed: {result.failure()}")
                        break
                    seconds, method = staging_seconds(result, state / "jobs" / name)
                    methods.add(method)
                    wall[which].append(result.seconds)
                    if seconds is not None:
                        staging[which].append(seconds)
        first, second = median(staging["first"]), median(staging["second"])
        section.rows.append(
            Row("re-run", f"staging of {label}, second run (cached)", seconds_text(second),
                "first run", seconds_text(first), ratio_text(second, first),
                f"{len(staging['second'])}/{len(staging['first'])}")
        )  # fmt: skip
        wall_first, wall_second = median(wall["first"]), median(wall["second"])
        section.rows.append(
            Row("re-run", f"whole `localproc run` of {label}, second run",
                seconds_text(wall_second), "first run", seconds_text(wall_first),
                ratio_text(wall_second, wall_first),
                f"{len(wall['second'])}/{len(wall['first'])}")
        )  # fmt: skip
        if label != "10 × 1 KiB":
            section.targets.append(
                Target(
                    f"cached re-run staging ≤ 10% of the first ({label})",
                    f"{ratio_text(second, first)} ({seconds_text(second)} vs "
                    f"{seconds_text(first)})",
                    None if first is None or second is None else second <= TARGET_FRACTION * first,
                )
            )
    section.notes.append(
        "Each pair runs one job whose container runs `true`, twice, with the same `--state-dir` "
        "(so the same input cache) and different `--name`s; a fresh state dir per pair. Staging "
        "time: " + ", ".join(sorted(methods)) + " (localproc prints no staging time of its own: "
        "from the arrival of its `staging N input object(s)` line to the modification time of "
        "`algo-1/config/resourceconfig.json`, which it writes right after staging). The target "
        "is judged on the large job, where staging is a cost worth caching; the 10-object job "
        "shows the fixed cost."
    )
    return section
