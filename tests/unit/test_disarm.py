"""Disarming what a container leaves behind, on this host alone: what cannot be disarmed is
reported, not raised."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def test_what_cannot_be_disarmed_is_reported_not_raised(tmp_path: Path) -> None:
    """A non-root localproc cannot chmod a file the container's root owns; here an immutable
    file stands in for it (even root cannot change one)."""
    import shutil
    import subprocess

    from localproc.transfer.disarm import describe, disarm_tree

    if shutil.which("chattr") is None:
        pytest.skip("needs chattr")
    planted = tmp_path / "job" / "out" / "rootshell"
    planted.parent.mkdir(parents=True)
    planted.write_bytes(b"#!/bin/sh\n")
    os.chmod(planted, 0o4755)
    if subprocess.run(["chattr", "+i", str(planted)], capture_output=True).returncode != 0:
        pytest.skip("this filesystem has no immutable files")
    try:
        report = disarm_tree(tmp_path / "job")
    finally:
        subprocess.run(["chattr", "-i", str(planted)], check=True)

    assert report.stripped == []
    assert len(report.failed) == 1 and str(planted) in report.failed[0]
    lines = describe(report, tmp_path / "job")
    assert lines and lines[-1].startswith("warning: could not check or disarm 1 item(s)")
