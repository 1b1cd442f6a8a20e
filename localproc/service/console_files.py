"""The files an instance wrote into its outputs, listed and opened for the console without ever
leaving the job's folder or following a link.

A container is hostile code and its output folders are bind-mounted into it: it can plant a
symlink (`result.csv -> /etc/shadow`, or a folder linked to `/`) or a FIFO. So a path is never
resolved by the kernel in one go: every component is opened relative to the folder before it
with O_NOFOLLOW (a link anywhere on the way fails the open), only a regular file is served, and
the names that make up a path come from the request only after checking that none of them is
`..`, `.`, empty or holds a separator."""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from localproc.errors import ResourceNotFound, ValidationException

MAX_LISTED_FILES = 1000  # per output and instance: a page lists, it does not inventory
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def check_parts(parts: Sequence[str]) -> list[str]:
    """`parts` when each is a plain name (no `..`, `.`, empty, `/`, NUL); ValidationException
    naming the first that is not."""
    for part in parts:
        if part in ("", ".", "..") or "/" in part or "\x00" in part:
            raise ValidationException.single(f"Not a file name inside the job's outputs: {part!r}")
    if not parts:
        raise ValidationException.single("No file named.")
    return list(parts)


def open_inside(root: Path, parts: Sequence[str]) -> tuple[BinaryIO, int]:
    """Open root/parts[0]/…/parts[-1] for reading, following no link on the way and opening
    nothing but a regular file: (the open file, its size). ResourceNotFound otherwise, with
    the same words whatever the reason, so a probe learns nothing about what is there."""
    names = check_parts(parts)
    try:
        fd = os.open(root, _DIR_FLAGS)
    except OSError:
        raise _not_found(names) from None
    try:
        for name in names[:-1]:
            next_fd = os.open(name, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = next_fd
        file_fd = os.open(names[-1], _FILE_FLAGS, dir_fd=fd)
    except OSError:
        raise _not_found(names) from None
    finally:
        os.close(fd)
    info = os.fstat(file_fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(file_fd)
        raise _not_found(names)
    os.set_blocking(file_fd, True)
    return os.fdopen(file_fd, "rb"), info.st_size


def list_files(root: Path, limit: int = MAX_LISTED_FILES) -> tuple[list[dict[str, object]], bool]:
    """The regular files under `root` (paths relative to it, sizes), walked without following
    links; a link is listed as one, not served. Sorted by path; (files, whether the list was cut
    at `limit`)."""
    found: list[dict[str, object]] = []
    pending = [""]
    while pending:
        relative = pending.pop()
        try:
            with os.scandir(root / relative if relative else root) as entries:
                listed = sorted(entries, key=lambda e: e.name)
        except OSError:
            continue
        for entry in listed:
            path = f"{relative}/{entry.name}" if relative else entry.name
            try:
                if entry.is_symlink():
                    found.append({"Path": path, "Bytes": None, "Kind": "link"})
                elif entry.is_dir(follow_symlinks=False):
                    pending.append(path)
                    continue
                elif entry.is_file(follow_symlinks=False):
                    size = entry.stat(follow_symlinks=False).st_size
                    found.append({"Path": path, "Bytes": size, "Kind": "file"})
                else:
                    continue
            except OSError:
                continue
            if len(found) >= limit:
                return sorted(found, key=lambda f: str(f["Path"])), True
    return sorted(found, key=lambda f: str(f["Path"])), False


def _not_found(names: Sequence[str]) -> ResourceNotFound:
    return ResourceNotFound(f"No downloadable file {'/'.join(names)} in the job's outputs.")
