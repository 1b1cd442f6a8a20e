"""A full disk does not wedge jobs: a container that fills the disk its state dir is on still
ends with a status; while the disk is full, describe, list, gc and delete work (delete frees the
space); and a name claimed by a run that died before recording its job can be used again."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from docker_engine import REPO_ROOT, Localproc, job_payload, s3_output, unique_name

pytestmark = pytest.mark.docker

FILL = (
    # An ExitMessage as large as the API allows, of characters JSON escapes to 12 bytes each:
    # the final record is some 25 KB larger than the first.
    "python3 -c \"open('/opt/ml/output/message', 'w').write(chr(0x1F600) * 1100)\"; "
    "echo filling the disk; dd if=/dev/zero of=/opt/ml/processing/output/fill bs=64k; "
    "for i in $(seq 200); do echo a line written to a full disk $i; done; exit 3"
)


@pytest.fixture
def small_state_dir(localproc: Localproc) -> Iterator[Path]:
    """The test's state dir on a filesystem of its own, 24 MiB, which a container can fill."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem needs root")
    localproc.state_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(localproc.state_dir)], check=True
    )
    try:
        yield localproc.state_dir
    finally:
        subprocess.run(["umount", "-l", str(localproc.state_dir)], check=False)


def test_a_container_filling_the_disk_ends_with_a_status_and_the_state_dir_stays_usable(
    localproc: Localproc, small_state_dir: Path, tmp_path: Path
) -> None:
    s3_root = tmp_path / "s3"
    (s3_root / "bucket").mkdir(parents=True)
    name = unique_name("fill")
    payload = job_payload(
        name,
        entrypoint=["sh", "-c", FILL],
        outputs=[s3_output("out", "s3://bucket/out", "/opt/ml/processing/output")],
        # A first record of some 9 KB, which the end then grows by some 13 KB.
        environment={f"VARIABLE_{i}": "v" * 256 for i in range(24)},
    )

    ran = localproc("run", str(localproc.write_payload(payload)), "--s3-root", str(s3_root))

    assert "Traceback" not in ran.output, ran.output
    assert ran.exit_code == 1, ran.output  # the script exits 3: the job Failed, with a status
    assert shutil.disk_usage(small_state_dir).free < 1024 * 1024  # still full
    record = localproc.record(name)
    assert record["ProcessingJobStatus"] == "Failed"
    assert "exited with code 3" in record["FailureReason"]
    assert record["ExitMessage"] == chr(0x1F600) * 1024
    assert "ProcessingEndTime" in record

    for command in (["describe", name], ["describe", name, "--json"], ["list"], ["gc"]):
        result = localproc(*command)
        assert "Traceback" not in result.output, result.output
        assert result.exit_code == 0, (command, result.output)
    assert json.loads(localproc("describe", name, "--json").stdout)["ProcessingJobStatus"] == (
        "Failed"
    )
    deleted = localproc("delete", name)
    assert deleted.exit_code == 0, deleted.output
    assert shutil.disk_usage(small_state_dir).free > 16 * 1024 * 1024  # delete freed it


def test_a_run_that_cannot_record_its_job_on_a_full_disk_says_so_and_leaves_nothing(
    localproc: Localproc, small_state_dir: Path, tmp_path: Path
) -> None:
    payload, s3_root = _quickstart(tmp_path)
    filler = small_state_dir / "filler"
    with filler.open("wb") as handle, contextlib.suppress(OSError):
        while True:
            handle.write(b"x" * 65536)
            handle.flush()

    ran = localproc("run", payload, "--s3-root", str(s3_root))

    assert "Traceback" not in ran.output, ran.output
    assert ran.exit_code == 4, ran.output
    assert "quickstart" in ran.stderr and "No space left on device" in ran.stderr
    assert not (small_state_dir / "jobs" / "quickstart").exists()
    filler.unlink()
    assert localproc("run", payload, "--s3-root", str(s3_root)).exit_code == 0  # the name is free


def _dead_process_identity() -> dict[str, object]:
    """The identity (as a claim records it) of a process that has ended."""
    code = (
        "import json, socket, psutil; p = psutil.Process(); print(json.dumps({'RunnerPid': p.pid,"
        " 'RunnerStartTime': p.create_time(), 'RunnerHost': socket.gethostname()}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def _quickstart(tmp_path: Path) -> tuple[str, Path]:
    s3_root = tmp_path / "s3"
    shutil.copytree(REPO_ROOT / "fixtures" / "s3", s3_root)
    return str(REPO_ROOT / "fixtures" / "jobs" / "quickstart.json"), s3_root


def test_a_name_claimed_by_a_run_that_died_before_recording_its_job_can_be_used_again(
    localproc: Localproc, tmp_path: Path
) -> None:
    payload, s3_root = _quickstart(tmp_path)
    claimed = localproc.job_dir("quickstart")
    claimed.mkdir(parents=True)
    (claimed / ".claim").write_text(json.dumps({**_dead_process_identity(), "Token": "t"}))
    assert localproc("describe", "quickstart").exit_code == 2  # ResourceNotFound: not recorded

    ran = localproc("run", payload, "--s3-root", str(s3_root))

    assert ran.exit_code == 0, ran.output
    assert localproc.record("quickstart")["ProcessingJobStatus"] == "Completed"


def test_gc_removes_stale_claims_and_leaves_live_ones(localproc: Localproc) -> None:
    jobs = localproc.state_dir / "jobs"
    dead = jobs / "claimed-by-the-dead"
    dead.mkdir(parents=True)
    (dead / ".claim").write_text(json.dumps({**_dead_process_identity(), "Token": "t"}))
    old_style = jobs / "claimed-long-ago"  # an older localproc's claim: a bare folder
    old_style.mkdir()
    long_ago = time.time() - 3600
    os.utime(old_style, (long_ago, long_ago))
    live = jobs / "claimed-now"
    live.mkdir()
    import psutil

    alive = {"RunnerPid": os.getpid(), "RunnerStartTime": psutil.Process().create_time()}
    alive["Token"] = "t"
    (live / ".claim").write_text(json.dumps(alive))

    collected = localproc("gc", "--json")

    assert collected.exit_code == 0, collected.output
    assert sorted(json.loads(collected.stdout)["removed_stale_claims"]) == [
        "claimed-by-the-dead",
        "claimed-long-ago",
    ]
    assert not dead.exists() and not old_style.exists() and live.exists()
