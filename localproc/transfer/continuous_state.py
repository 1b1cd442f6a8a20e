"""The bookkeeping of a ContinuousUploader (continuous.py): what it knows of each file it watches
(when to look at it again, what of it reached S3) and of each S3 key (whether an upload of it
is in flight, whose content it holds). All of it is guarded by the uploader's one lock."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

# (st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns): changes whenever the content can have.
Signature = tuple[int, int, int, int, int]
# A file of one target: (index of the target, '/'-path relative to its folder).
PathId = tuple[int, str]
BucketKey = tuple[str, str]


@dataclass(frozen=True)
class _Version:
    """A snapshot that reached S3 (or was found identical to what S3 already held)."""

    signature: Signature
    digest: bytes
    racy: bool


@dataclass
class _PathState:
    due: float | None = None  # monotonic time to look at the file again; None when not armed
    queued: float | None = None  # the due time of this path's one live heap entry
    closed: bool = False  # its writer closed it (or renamed it into place): no settle wait
    seen: Signature | None = None  # for the settle test when the file's ctime cannot tell
    seen_at: float = 0.0
    done: _Version | None = None  # what this path last put into S3


@dataclass
class _KeyState:
    in_flight: bool = False
    waiting: set[PathId] = field(default_factory=set)  # became due while the key was in flight
    holder: PathId | None = None  # whose snapshot S3 holds under this key
    digest: bytes | None = None  # ... and its content hash
    failure: str | None = None  # the last attempt's error, cleared by a later success


def _signature(info: os.stat_result) -> Signature:
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
