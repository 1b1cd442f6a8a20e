"""runtime/archive.py: what a container's archive may do to the local folder it is mirrored into
(the archive comes from a container: hostile), and the input archive's shape."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

from localproc.runtime.archive import chunk_reader, folder_archive, mirror_archive


def _tar(*members: tuple[tarfile.TarInfo, bytes | None]) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    buffer.seek(0)
    return buffer


def _entry(name: str, kind: bytes = tarfile.REGTYPE, mode: int = 0o644, **extra: object):
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = kind, mode, 1_700_000_000
    for key, value in extra.items():
        setattr(info, key, value)
    return info


def test_files_and_folders_below_the_top_folder_land_in_the_target(tmp_path: Path) -> None:
    archive = _tar(
        (_entry("output", tarfile.DIRTYPE, 0o777), None),
        (_entry("output/a.txt"), b"alpha"),
        (_entry("output/sub", tarfile.DIRTYPE, 0o755), None),
        (_entry("output/sub/b.txt", mode=0o600), b"beta"),
    )
    report = mirror_archive(archive, tmp_path / "out")
    assert (tmp_path / "out" / "a.txt").read_bytes() == b"alpha"
    assert (tmp_path / "out" / "sub" / "b.txt").read_bytes() == b"beta"
    assert report.written == 2 and not report.skipped
    assert not [p for p in tmp_path.iterdir() if p.name != "out"]  # no temporary folder left


def test_names_leaving_the_folder_and_devices_are_skipped_links_never_followed(
    tmp_path: Path,
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    archive = _tar(
        (_entry("output", tarfile.DIRTYPE), None),
        (_entry("/etc/evil"), b"x"),
        (_entry("output/../../outside/escaped"), b"x"),
        (_entry("output/link", tarfile.SYMTYPE, linkname=str(outside)), None),
        (_entry("output/link/through"), b"x"),  # written through the symlink if it existed
        (_entry("output/hard", tarfile.LNKTYPE, linkname="/etc/passwd"), None),
        (_entry("output/dev", tarfile.CHRTYPE, devmajor=1, devminor=3), None),
        (_entry("output/fifo", tarfile.FIFOTYPE), None),
        (_entry("output/ok"), b"fine"),
    )
    report = mirror_archive(archive, tmp_path / "out")
    assert list(outside.iterdir()) == []
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["fifo", "link", "ok"]
    # As the container left them (the uploaders skip them), never written through:
    assert os.readlink(out / "link") == str(outside)
    assert stat.S_ISFIFO(os.lstat(out / "fifo").st_mode)
    assert sorted(report.skipped) == sorted([
        "/etc/evil", "output/../../outside/escaped", "output/link/through", "output/hard",
        "output/dev",
    ])  # fmt: skip


def test_setuid_setgid_and_sticky_bits_are_dropped(tmp_path: Path) -> None:
    archive = _tar(
        (_entry("output", tarfile.DIRTYPE), None),
        (_entry("output/tool", mode=0o6755), b"#!/bin/sh\n"),
        (_entry("output/dir", tarfile.DIRTYPE, mode=0o3777), None),
    )
    mirror_archive(archive, tmp_path / "out")
    assert stat.S_IMODE(os.lstat(tmp_path / "out" / "tool").st_mode) == 0o755
    assert stat.S_IMODE(os.lstat(tmp_path / "out" / "dir").st_mode) == 0o777


def test_a_hard_link_to_a_file_of_the_archive_is_copied(tmp_path: Path) -> None:
    archive = _tar(
        (_entry("output", tarfile.DIRTYPE), None),
        (_entry("output/a"), b"shared"),
        (_entry("output/b", tarfile.LNKTYPE, linkname="output/a"), None),
    )
    mirror_archive(archive, tmp_path / "out")
    assert (tmp_path / "out" / "b").read_bytes() == b"shared"


def test_a_second_pass_keeps_unchanged_files_and_removes_what_went(tmp_path: Path) -> None:
    first = _tar(
        (_entry("output", tarfile.DIRTYPE), None),
        (_entry("output/keep"), b"same"),
        (_entry("output/gone"), b"old"),
        (_entry("output/grows"), b"1"),
    )
    mirror_archive(first, tmp_path / "out")
    keep_inode = os.stat(tmp_path / "out" / "keep").st_ino
    second = _tar(
        (_entry("output", tarfile.DIRTYPE), None),
        (_entry("output/keep"), b"same"),
        (_entry("output/grows"), b"12"),
    )
    report = mirror_archive(second, tmp_path / "out")
    assert os.stat(tmp_path / "out" / "keep").st_ino == keep_inode  # never rewritten
    assert (tmp_path / "out" / "grows").read_bytes() == b"12"
    assert not (tmp_path / "out" / "gone").exists()
    assert (report.written, report.unchanged, report.removed) == (1, 1, 1)


def test_the_input_archive_puts_each_folder_at_its_container_path_owned_by_root(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "sub" / "x.csv").write_text("1,2\n")
    pipe_folder = tmp_path / "pipe"
    pipe_folder.mkdir()
    os.mkfifo(pipe_folder / "train_0", 0o666)
    folders = [(data, "/opt/ml/processing/input/data"),
               (pipe_folder, "/opt/ml/processing/input/train")]  # fmt: skip
    stream = chunk_reader(folder_archive(folders))
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        members = {m.name: m for m in tar}
    assert members["opt/ml/processing/input/data/sub/x.csv"].isfile()
    assert members["opt/ml/processing/input/train/train_0"].isfifo()
    assert {(m.uid, m.gid) for m in members.values()} == {(0, 0)}


def test_a_symlink_of_an_earlier_pass_is_replaced_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    mirror_archive(_tar((_entry("output", tarfile.DIRTYPE), None),
                        (_entry("output/d", tarfile.SYMTYPE, linkname=str(outside)), None)),
                   tmp_path / "out")  # fmt: skip
    mirror_archive(_tar((_entry("output", tarfile.DIRTYPE), None),
                        (_entry("output/d", tarfile.DIRTYPE), None),
                        (_entry("output/d/f"), b"inside")),
                   tmp_path / "out")  # fmt: skip
    assert list(outside.iterdir()) == []
    assert (tmp_path / "out" / "d" / "f").read_bytes() == b"inside"
