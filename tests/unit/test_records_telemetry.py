"""What a run keeps for the console (records/telemetry.py): the plan, phase times and usage
samples, written best effort and read back skipping whatever is damaged."""

from __future__ import annotations

import json
from pathlib import Path

from localproc.records.layout import StateDir
from localproc.records.telemetry import (
    RunTelemetry,
    read_phases,
    read_plan,
    read_usage_series,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_phases_samples_and_plan_round_trip(tmp_path: Path) -> None:
    folder = StateDir(tmp_path).job("telemetry-job")
    folder.path.mkdir(parents=True)
    clock = Clock()
    telemetry = RunTelemetry(folder, clock)
    telemetry.plan({"Hosts": ["algo-1", "algo-2"]})
    with telemetry.phase("Staging"):
        clock.now = 1002.0
    telemetry.containers_started(["algo-1", "algo-2"])
    for step in range(3):
        clock.now = 1003.0 + step
        telemetry.sample("algo-1", 100 + step, 200, 0.5 * step)
    clock.now = 1010.0
    telemetry.container_ended("algo-2", exit_code=1, stopped=False, oom_killed=True)
    phases = read_phases(folder)
    assert phases["Staging"] == {"Start": 1000.0, "End": 1002.0}
    assert phases["Instances"]["algo-1"] == {"Start": 1002.0}
    assert phases["Instances"]["algo-2"] == {
        "Start": 1002.0, "End": 1010.0, "ExitCode": 1, "Stopped": False, "OomKilled": True,
    }  # fmt: skip
    assert read_plan(folder) == {"Hosts": ["algo-1", "algo-2"]}
    assert [s["MemoryBytes"] for s in read_usage_series(folder, "algo-1")] == [100, 101, 102]
    assert read_usage_series(folder, "algo-2") == []


def test_at_most_one_sample_a_second_is_kept(tmp_path: Path) -> None:
    folder = StateDir(tmp_path).job("sampled")
    folder.path.mkdir(parents=True)
    clock = Clock()
    telemetry = RunTelemetry(folder, clock)
    for tenth in range(25):
        clock.now = 1000.0 + tenth / 10
        telemetry.sample("algo-1", tenth, tenth, None)
    assert [s["T"] for s in read_usage_series(folder, "algo-1")] == [1000.0, 1001.0, 1002.0]


def test_damaged_lines_and_files_are_skipped(tmp_path: Path) -> None:
    folder = StateDir(tmp_path).job("damaged")
    folder.telemetry.mkdir(parents=True)
    good = json.dumps({"T": 5, "MemoryBytes": 7, "PeakMemoryBytes": "x", "CpuSeconds": 1})
    folder.usage_series("algo-1").write_text(f'{{"T": 9}}\n{good}\nnot json\n{{"T": "x"}}\n{{"T"')
    folder.phases.write_text("[1, 2")
    samples = read_usage_series(folder, "algo-1")
    assert samples == [
        {"T": 5, "MemoryBytes": 7, "PeakMemoryBytes": None, "CpuSeconds": 1},
        {"T": 9, "MemoryBytes": None, "PeakMemoryBytes": None, "CpuSeconds": None},
    ]
    assert read_phases(folder) == {} and read_plan(folder) is None


def test_a_telemetry_file_that_is_a_link_is_not_read(tmp_path: Path) -> None:
    folder = StateDir(tmp_path).job("linked")
    folder.telemetry.mkdir(parents=True)
    (tmp_path / "elsewhere.json").write_text('{"Staging": {"Start": 1}}')
    folder.phases.symlink_to(tmp_path / "elsewhere.json")
    assert read_phases(folder) == {}


def test_a_job_folder_that_is_gone_loses_figures_not_the_run(tmp_path: Path) -> None:
    folder = StateDir(tmp_path).job("gone")  # never created
    telemetry = RunTelemetry(folder, Clock())
    with telemetry.phase("Uploading"):
        telemetry.sample("algo-1", 1, 1, 1.0)
    assert read_phases(folder) == {}
