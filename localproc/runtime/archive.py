"""Folders to and from a Docker engine that shares no filesystem with this process, as tar
archives (the Engine API's `put_archive` / `get_archive`).

Going in, `folder_archive` streams local folders as one tar, each under the container path it
must appear at, owned by root with the local modes (what a bind mount would show, less the
owner). Coming back, `mirror_archive` makes a local folder hold what a container's folder held:
the archive is the container's work, so it is read as hostile. No name may leave the folder
(absolute names, `..`); no device node is made; modes lose setuid/setgid/sticky; a hard link is a
copy of a file of the archive already placed (anything else is skipped). Symlinks and FIFOs are
made as they are (as the container left them in a bind-mounted folder: the uploaders skip and
report them), but an entry is placed only below a *folder* this pass made, so no name is ever
resolved through a symlink. Every file is written under a temporary name outside the folder and
renamed into place, so a reader of the folder (the Continuous uploader) never sees a half-written
file.
"""

from __future__ import annotations

import contextlib
import io
import os
import posixpath
import shutil
import stat
import tarfile
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

CHUNK_BYTES = 1024 * 1024


# -- going in ---------------------------------------------------------------------------------
def folder_archive(folders: Iterable[tuple[Path, str]]) -> Iterator[bytes]:
    """A tar stream of each local folder under its container path (absolute, the leading '/'
    dropped), made on a thread while it is read: memory stays bounded whatever the inputs
    weigh. Symlinks are not followed; a FIFO becomes a FIFO entry (Pipe mode's)."""
    read_end, write_end = os.pipe()
    failure: list[BaseException] = []

    def write() -> None:
        try:
            with (
                os.fdopen(write_end, "wb", buffering=CHUNK_BYTES) as sink,
                tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as tar,
            ):
                for local, container_path in folders:
                    tar.add(str(local), arcname=container_path.strip("/"), filter=_as_root)
        except BrokenPipeError:
            pass  # the reader gave up (the upload failed): its error is the one that counts
        except BaseException as err:  # reported to the reader, which raises it
            failure.append(err)

    writer = threading.Thread(target=write, name="archive-writer", daemon=True)
    writer.start()
    with os.fdopen(read_end, "rb") as source:
        while chunk := source.read(CHUNK_BYTES):
            yield chunk
    writer.join()
    if failure:
        raise OSError(f"archiving the inputs failed: {failure[0]}") from failure[0]


def _as_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


# -- coming back ------------------------------------------------------------------------------
@dataclass
class MirrorReport:
    written: int = 0
    unchanged: int = 0
    removed: int = 0
    skipped: list[str] = field(default_factory=list)  # links, devices, FIFOs, bad names


def mirror_archive(stream: BinaryIO, target: Path, always_write: bool = False) -> MirrorReport:
    """Make `target` hold what the archive holds below its top folder (get_archive names every
    entry after the folder asked for). Files already there with the same size and mtime are
    kept unless `always_write`; files and folders the archive no longer has are removed."""
    report = MirrorReport()
    target.mkdir(parents=True, exist_ok=True)
    incoming = Path(tempfile.mkdtemp(prefix=f".{target.name}.incoming-", dir=target.parent))
    seen: set[str] = set()  # every entry placed: kept
    folders: set[str] = set()  # the folders among them: the only parents an entry may have
    try:
        with tarfile.open(fileobj=stream, mode="r|*") as tar:
            for member in tar:
                relative = _relative_name(member.name)
                if relative == "":
                    continue  # the folder itself
                placed = relative is not None and _parents_seen(relative, folders) and (
                    _mirror_one(tar, member, target, relative, incoming, always_write, report, seen)
                )  # fmt: skip
                if placed:
                    seen.add(str(relative))
                    if member.isdir():
                        folders.add(str(relative))
                else:  # a link, device or FIFO, a name that could leave, below a non-folder
                    report.skipped.append(member.name)
    finally:
        shutil.rmtree(incoming, ignore_errors=True)
    report.removed = _remove_unseen(target, seen)
    return report


def _relative_name(name: str) -> str | None:
    """The entry's path below the archive's top folder; None for a name that could leave it."""
    if name.startswith("/") or "\\" in name:
        return None
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts):
        return None
    return posixpath.join(*parts[1:]) if len(parts) > 1 else ""


def _mirror_one(
    tar: tarfile.TarFile,
    member: tarfile.TarInfo,
    target: Path,
    relative: str,
    incoming: Path,
    always_write: bool,
    report: MirrorReport,
    seen: set[str],
) -> bool:
    """Place one entry; False when it is a device, or a hard link to nothing placed."""
    if member.issym() or member.isfifo():
        _place_special(target / relative, member, incoming)
        return True
    if member.isdir():
        _make_folder(target / relative, member.mode)
        return True
    if member.isfile():
        source = tar.extractfile(member)
        assert source is not None
        _place_file(target / relative, source, member, incoming, always_write, report)
        return True
    linked = _linked_file(target, member.linkname, seen) if member.islnk() else None
    if linked is None:
        return False
    with open(linked, "rb") as source:
        _place_file(target / relative, source, member, incoming, True, report)
    return True


def _place_special(path: Path, member: tarfile.TarInfo, incoming: Path) -> None:
    """A symlink (its target as written, never followed here) or a FIFO, renamed into place."""
    temporary = incoming / "special"
    if member.issym():
        os.symlink(member.linkname, temporary)
    else:
        os.mkfifo(temporary, member.mode & 0o777)
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISDIR(os.lstat(path).st_mode):
            shutil.rmtree(path)
    os.replace(temporary, path)


def _linked_file(target: Path, linkname: str, seen: set[str]) -> Path | None:
    """A hard link's target, when it is a file this mirror has already written: its content is
    copied (a link to anything else, or outside the archive, is skipped)."""
    relative = _relative_name(linkname)
    if not relative or relative not in seen:
        return None
    path = target / relative
    return path if stat.S_ISREG(os.lstat(path).st_mode) else None


def _parents_seen(relative: str, seen: set[str]) -> bool:
    parent = posixpath.dirname(relative)
    while parent:
        if parent not in seen:
            return False
        parent = posixpath.dirname(parent)
    return True


def _make_folder(path: Path, mode: int) -> None:
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    if not stat.S_ISDIR(os.lstat(path).st_mode):  # a file of an earlier pass: now a folder
        os.unlink(path)
        os.mkdir(path, 0o700)
    os.chmod(path, (mode & 0o777) | 0o700)


def _place_file(
    path: Path,
    source: BinaryIO,
    member: tarfile.TarInfo,
    incoming: Path,
    always_write: bool,
    report: MirrorReport,
) -> None:
    mtime = int(member.mtime)
    with contextlib.suppress(FileNotFoundError):
        known = os.lstat(path)
        if stat.S_ISDIR(known.st_mode):
            shutil.rmtree(path)
        elif (
            not always_write
            and stat.S_ISREG(known.st_mode)
            and (known.st_size == member.size and int(known.st_mtime) == mtime)
        ):
            report.unchanged += 1
            return
    fd, temporary = tempfile.mkstemp(dir=incoming)
    with os.fdopen(fd, "wb") as sink:
        shutil.copyfileobj(source, sink, CHUNK_BYTES)
    os.chmod(temporary, member.mode & 0o777)
    os.utime(temporary, (mtime, mtime))
    os.replace(temporary, path)
    report.written += 1


def _remove_unseen(target: Path, seen: set[str]) -> int:
    removed = 0
    for folder, folders, files in os.walk(target, topdown=False):
        relative_folder = os.path.relpath(folder, target)
        for name in files + folders:
            relative = os.path.normpath(os.path.join(relative_folder, name))
            if relative in seen:
                continue
            path = os.path.join(folder, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
            removed += 1
    return removed


class _Chunks(io.RawIOBase):
    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._left = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._left:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._left = memoryview(chunk)
        count = min(len(buffer), len(self._left))
        buffer[:count] = self._left[:count]
        self._left = self._left[count:]
        return count


def chunk_reader(chunks: Iterable[bytes]) -> BinaryIO:
    """A file object over an iterator of byte chunks (what the SDK's get_archive returns)."""
    return io.BufferedReader(_Chunks(chunks), CHUNK_BYTES)  # type: ignore[return-value]
