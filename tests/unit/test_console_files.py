"""Output files served by the console never leave the job's folder and never follow a link
(service/console_files.py): a container writes its outputs and may plant links and FIFOs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from localproc.errors import ResourceNotFound, ValidationException
from localproc.service.console_files import check_parts, list_files, open_inside


@pytest.fixture
def job(tmp_path: Path) -> Path:
    """A job folder whose algo-1 wrote out/data.csv, plus a secret beside the job."""
    (tmp_path / "secret.txt").write_text("host secret")
    root = tmp_path / "job"
    out = root / "algo-1" / "outputs" / "out"
    (out / "sub").mkdir(parents=True)
    (out / "data.csv").write_text("a,b\n1,2\n")
    (out / "sub" / "deep.txt").write_text("deep")
    return root


def test_a_file_the_instance_wrote_is_opened_with_its_size(job: Path) -> None:
    handle, size = open_inside(job, ["algo-1", "outputs", "out", "data.csv"])
    with handle:
        assert handle.read() == b"a,b\n1,2\n"
    assert size == 8
    handle, _ = open_inside(job, ["algo-1", "outputs", "out", "sub", "deep.txt"])
    handle.close()


@pytest.mark.parametrize("bad", ["..", ".", "", "a/b", "x\x00y"])
def test_names_that_could_climb_out_are_refused_before_any_open(bad: str) -> None:
    with pytest.raises(ValidationException):
        check_parts(["algo-1", bad])


def test_a_symlink_to_a_host_file_is_not_followed(job: Path, tmp_path: Path) -> None:
    out = job / "algo-1" / "outputs" / "out"
    os.symlink(tmp_path / "secret.txt", out / "leak.txt")
    os.symlink("../../../../secret.txt", out / "relative-leak.txt")
    for name in ("leak.txt", "relative-leak.txt"):
        with pytest.raises(ResourceNotFound):
            open_inside(job, ["algo-1", "outputs", "out", name])


def test_a_symlinked_folder_on_the_way_is_not_followed(job: Path, tmp_path: Path) -> None:
    out = job / "algo-1" / "outputs" / "out"
    os.symlink(tmp_path, out / "up")
    with pytest.raises(ResourceNotFound):
        open_inside(job, ["algo-1", "outputs", "out", "up", "secret.txt"])


def test_a_fifo_or_a_folder_is_not_served(job: Path) -> None:
    out = job / "algo-1" / "outputs" / "out"
    os.mkfifo(out / "pipe")
    for name in ("pipe", "sub"):
        with pytest.raises(ResourceNotFound):
            open_inside(job, ["algo-1", "outputs", "out", name])


def test_the_listing_shows_links_as_links_and_does_not_walk_into_them(
    job: Path, tmp_path: Path
) -> None:
    out = job / "algo-1" / "outputs" / "out"
    os.symlink(tmp_path / "secret.txt", out / "leak.txt")
    os.symlink(tmp_path, out / "up")
    os.mkfifo(out / "pipe")
    files, cut = list_files(out)
    assert not cut
    assert files == [
        {"Path": "data.csv", "Bytes": 8, "Kind": "file"},
        {"Path": "leak.txt", "Bytes": None, "Kind": "link"},
        {"Path": "sub/deep.txt", "Bytes": 4, "Kind": "file"},
        {"Path": "up", "Bytes": None, "Kind": "link"},
    ]


def test_the_listing_stops_at_its_limit(job: Path) -> None:
    out = job / "algo-1" / "outputs" / "out"
    for index in range(20):
        (out / f"f{index:02}").write_text("x")
    files, cut = list_files(out, limit=5)
    assert cut and len(files) == 5
