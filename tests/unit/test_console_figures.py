"""The console's figures: the timeline built from recorded phase times, and usage samples brought
down to chart points (service/console_figures.py), pure."""

from __future__ import annotations

from localproc.service.console_figures import build_timeline, downsample, peak

HOSTS = ["algo-1", "algo-2", "algo-3"]


def phases(**instances: dict[str, object]) -> dict[str, object]:
    return {
        "Staging": {"Start": 100.0, "End": 110.0},
        "Uploading": {"Start": 200.0, "End": 205.0},
        "Instances": instances,
    }


def test_each_instance_gets_staging_running_and_uploading_in_order() -> None:
    recorded = phases(
        **{h: {"Start": 110.0, "End": 190.0, "ExitCode": 0, "Stopped": False} for h in HOSTS}
    )
    timeline = build_timeline(HOSTS, recorded, now=300.0, max_runtime_seconds=None)
    assert [i["Host"] for i in timeline["Instances"]] == HOSTS
    first = timeline["Instances"][0]
    assert [s["Phase"] for s in first["Segments"]] == ["Staging", "Running", "Uploading"]
    assert first["Segments"][1] == {"Phase": "Running", "Start": 110.0, "End": 190.0, "Open": False}
    assert first["Outcome"] == "Completed"
    assert (timeline["Start"], timeline["End"], timeline["Deadline"]) == (100.0, 205.0, None)


def test_the_instance_that_failed_first_is_marked_and_the_others_are_not() -> None:
    recorded = phases(
        **{
            "algo-1": {"Start": 110.0, "End": 150.0, "ExitCode": 0, "Stopped": True},
            "algo-2": {"Start": 110.0, "End": 130.0, "ExitCode": 3, "Stopped": False},
            "algo-3": {"Start": 110.0, "End": 140.0, "ExitCode": 1, "Stopped": False},
        }
    )
    instances = build_timeline(HOSTS, recorded, 300.0, None)["Instances"]
    assert [i["Outcome"] for i in instances] == ["Stopped", "Failed", "Failed"]
    assert [i["FailedFirst"] for i in instances] == [False, True, False]
    assert instances[1]["ExitCode"] == 3


def test_a_running_instance_is_open_up_to_now() -> None:
    recorded = {
        "Staging": {"Start": 100.0, "End": 110.0},
        "Instances": {"algo-1": {"Start": 110.0}},
    }
    timeline = build_timeline(["algo-1"], recorded, now=130.0, max_runtime_seconds=None)
    running = timeline["Instances"][0]["Segments"][1]
    assert running == {"Phase": "Running", "Start": 110.0, "End": 130.0, "Open": True}
    assert timeline["Instances"][0]["Outcome"] == "Running"


def test_nothing_recorded_gives_instances_without_segments() -> None:
    timeline = build_timeline(["algo-1", "algo-2"], {}, now=1.0, max_runtime_seconds=60)
    assert [i["Outcome"] for i in timeline["Instances"]] == ["NotStarted", "NotStarted"]
    assert timeline["Start"] is None and timeline["Deadline"] is None


def test_the_deadline_counts_from_the_containers_start_and_widens_the_span_when_near() -> None:
    recorded = phases(**{"algo-1": {"Start": 110.0, "End": 150.0, "ExitCode": 0}})
    near = build_timeline(["algo-1"], recorded, 300.0, max_runtime_seconds=100)
    assert near["Deadline"] == 210.0 and near["DeadlineInView"] and near["End"] == 210.0
    far = build_timeline(["algo-1"], recorded, 300.0, max_runtime_seconds=86400)
    assert far["Deadline"] == 86510.0 and not far["DeadlineInView"] and far["End"] == 205.0


def test_damaged_phase_entries_are_ignored() -> None:
    recorded = {"Staging": "soon", "Instances": {"algo-1": {"Start": "x"}, "algo-2": [1]}}
    timeline = build_timeline(["algo-1", "algo-2"], recorded, 5.0, None)
    assert all(i["Segments"] == [] for i in timeline["Instances"])


def test_cpus_are_cpu_time_over_wall_time_between_samples() -> None:
    samples = [
        {"T": 0.0, "MemoryBytes": 10, "CpuSeconds": 0.0},
        {"T": 2.0, "MemoryBytes": 20, "CpuSeconds": 3.0},
        {"T": 4.0, "MemoryBytes": None, "PeakMemoryBytes": 25, "CpuSeconds": 3.0},
    ]
    points = downsample(samples)
    assert points == [
        {"T": 0.0, "MemoryBytes": 10, "Cpus": None},
        {"T": 2.0, "MemoryBytes": 20, "Cpus": 1.5},
        {"T": 4.0, "MemoryBytes": 25, "Cpus": 0.0},
    ]


def test_downsampling_keeps_at_most_max_points_and_never_loses_the_peak() -> None:
    samples = [{"T": float(t), "MemoryBytes": 100, "CpuSeconds": t * 0.5} for t in range(10_000)]
    samples[7777]["MemoryBytes"] = 9_999
    points = downsample(samples, max_points=300)
    assert len(points) <= 300
    assert peak(points, "MemoryBytes") == 9_999
    assert [p["T"] for p in points] == sorted(p["T"] for p in points)
    assert abs(peak(points, "Cpus") - 0.5) < 1e-9


def test_samples_out_of_order_or_repeated_are_skipped() -> None:
    samples = [{"T": 5.0, "MemoryBytes": 1}, {"T": 5.0, "MemoryBytes": 2}, {"T": 4.0}]
    assert downsample(samples) == [{"T": 5.0, "MemoryBytes": 1, "Cpus": None}]
