"""Output files served by the console never leave the job's folder and never follow a link
(service/console_files.py): a container writes its outputs and may plant links and FIFOs."""

from __future__ import annotations

import os
import threading
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


def test_a_special_file_is_refused_without_being_opened(job: Path) -> None:
    """Opening is an act: opening a FIFO for reading releases the container's writer waiting on
    it (and a device node, which containers cannot make as they run without CAP_MKNOD, may act
    when opened). So the type is checked before anything is opened for reading: here the
    writer stays blocked in its open, because no reader ever came."""
    fifo = job / "algo-1" / "outputs" / "out" / "pipe"
    os.mkfifo(fifo)
    opened = threading.Event()

    def writer() -> None:
        with open(fifo, "wb"):  # blocks until a reader opens the FIFO
            opened.set()

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        with pytest.raises(ResourceNotFound):
            open_inside(job, ["algo-1", "outputs", "out", "pipe"])
        assert not opened.wait(0.5), "the FIFO was opened for reading"
    finally:
        os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))  # release the writer
        thread.join(5)


def test_a_file_name_that_is_not_utf8_is_listed_readably_and_not_offered(job: Path) -> None:
    """A container names files with any bytes. Such a name reaches Python as lone surrogates,
    which JSON carries but the page cannot put in a URL (encodeURIComponent throws, and the
    job page stopped drawing there: no outputs, no logs). It is listed with U+FFFD in place of
    the bad bytes and not offered for download (no request could name it anyway)."""
    out = job / "algo-1" / "outputs" / "out"
    with open(os.path.join(os.fsencode(out), b"bad\xff.txt"), "wb") as handle:
        handle.write(b"x")
    files, _ = list_files(out)
    odd = [f for f in files if str(f["Path"]).startswith("bad")]
    assert odd == [{"Path": "bad\ufffd.txt", "Bytes": 1, "Kind": "unnamed"}]
    for listed in files:
        str(listed["Path"]).encode("utf-8")  # raises on a lone surrogate
