"""Outputs: after the containers end, every regular file under each instance's output folder is
uploaded to the output's S3Uri with its relative path. Symlinks are never followed and devices,
sockets and FIFOs are never read, so a container cannot make us upload a host file."""

from __future__ import annotations

import os
import queue
import stat
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from localproc.payload.job import OutputSpec
from localproc.storage import ObjectStore, parse_s3_uri

UPLOAD_WORKERS = 16  # as many in flight as downloads: small objects are latency-bound


@dataclass(frozen=True)
class UploadTask:
    source: Path
    bucket: str
    key: str
    host: str
    # Bytes actually sent, when known at upload time. Continuous uploads send a snapshot of a file
    # that may have grown or vanished since, so its current size would not tell.
    size: int | None = None

    @property
    def bytes(self) -> int:
        return self.size if self.size is not None else self.source.stat().st_size


# FailureReason names this many failed objects at most; the rest are counted (the API caps the
# field at 1,024 characters, and the runner's log lists every one).
NAMED_FAILURES = 3
FAILURE_SUMMARY_BUDGET = 900


@dataclass
class UploadReport:
    uploaded: list[UploadTask] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # one message per object that failed
    collisions: list[str] = field(default_factory=list)  # keys written by more than one instance
    skipped: list[str] = field(default_factory=list)  # symlinks and special files left alone
    abandoned: list[str] = field(default_factory=list)  # s3:// URIs given up on by request

    @property
    def bytes(self) -> int:
        return sum(task.bytes for task in self.uploaded)

    def merge(self, other: UploadReport) -> None:
        self.uploaded += other.uploaded
        self.failures += other.failures
        self.collisions += other.collisions
        self.skipped += other.skipped
        self.abandoned += other.abandoned

    def failure_summary(self, budget: int = FAILURE_SUMMARY_BUDGET) -> str:
        """The failed objects for a FailureReason: the first few (each message shortened), as
        many as fit `budget` characters, and how many more."""
        named: list[str] = []
        used = 0
        for failure in self.failures[:NAMED_FAILURES]:
            entry = failure if len(failure) <= 240 else failure[:239] + "…"
            if named and used + len(entry) + 2 > budget:
                break
            named.append(entry)
            used += len(entry) + 2
        more = len(self.failures) - len(named)
        text = "; ".join(named)
        if more <= 0:
            return text
        return f"{text}; and {more} more object(s) (each is listed in the run's log)"


def _describe_error(err: BaseException) -> str:
    if isinstance(err, UnicodeError):
        return "the file's name is not valid UTF-8, which an S3 key must be"
    return str(err) or type(err).__name__


def output_key(s3_uri: str, relative_path: str) -> tuple[str, str]:
    bucket, prefix = parse_s3_uri(s3_uri)
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return bucket, prefix + relative_path


def regular_files(root: Path, skipped: list[str]) -> Iterator[str]:
    """Relative '/'-paths of regular files below root, without following any symlink."""
    for relative, _ in scan_files(root, skipped):
        yield relative


# An S3 key has at most 1,024 bytes, so no file below this many folders can be uploaded; the
# scan stops there, which also bounds the folders it holds open (one per level).
MAX_FOLDER_DEPTH = 512


def scan_files(root: Path, skipped: list[str]) -> Iterator[tuple[str, os.stat_result]]:
    """(relative '/'-path, lstat result) of every regular file below root, never following a
    symlink; symlinks, devices, sockets and FIFOs go to `skipped`, and so do folders deeper than
    MAX_FOLDER_DEPTH (whose files could not have an S3 key).

    Each folder is opened relative to its parent with O_NOFOLLOW, so a sub-folder swapped for a
    symlink between being listed and being opened is not walked into (continuous uploads scan
    folders that running containers are still changing); entries that vanish meanwhile are
    passed over. The walk is depth first with an explicit stack (no recursion, whatever the
    nesting), in name order.
    """
    top = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    # Each frame: an open folder, its relative path, and the sub-folders still to visit.
    stack: list[tuple[int, str, list[tuple[str, str]]]] = []
    try:
        stack.append((top, "", []))
        yield from _scan_entries(top, "", stack[-1][2], skipped)
        while stack:
            directory, relative_dir, folders = stack[-1]
            if not folders:
                os.close(directory)
                stack.pop()
                continue
            name, relative = folders.pop(0)
            if len(stack) >= MAX_FOLDER_DEPTH:
                skipped.append(relative + "/ (nested too deep for an S3 key)")
                continue
            try:
                inner = os.open(
                    name,
                    os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                    dir_fd=directory,
                )
            except (FileNotFoundError, NotADirectoryError):
                continue  # removed, or replaced by a file or a symlink since it was listed
            except OSError:
                skipped.append(relative + "/ (cannot be read)")
                continue
            stack.append((inner, relative, []))
            yield from _scan_entries(inner, relative, stack[-1][2], skipped)
    finally:
        for directory, _, _ in stack:
            os.close(directory)


def _scan_entries(
    directory: int, relative_dir: str, folders: list[tuple[str, str]], skipped: list[str]
) -> Iterator[tuple[str, os.stat_result]]:
    """The regular files of one open folder; its sub-folders are added to `folders`."""
    try:
        with os.scandir(directory) as listing:
            entries = sorted(listing, key=lambda e: e.name)
    except OSError:
        skipped.append((relative_dir or ".") + "/ (cannot be listed)")
        return
    for entry in entries:
        relative = f"{relative_dir}/{entry.name}" if relative_dir else entry.name
        try:
            info = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        if stat.S_ISDIR(info.st_mode):
            folders.append((entry.name, relative))
        elif stat.S_ISREG(info.st_mode):
            yield relative, info
        else:
            skipped.append(relative)


def upload_outputs(
    outputs: list[OutputSpec] | tuple[OutputSpec, ...],
    folders: dict[tuple[str, str], Path],
    store: ObjectStore,
    kms_key_id: str | None,
    on_upload: Callable[[UploadTask], None] | None = None,
    abandoned: Callable[[], bool] = lambda: False,
) -> UploadReport:
    """`folders` maps (host, output name) to the host folder mounted at that output's LocalPath.
    Instances upload in host order, so when two write the same path the last host wins. Once
    `abandoned()`, it returns at once, with the objects not uploaded in `report.abandoned`."""
    report = UploadReport()
    owner: dict[tuple[str, str], str] = {}
    # Keyed by (bucket, key), in the order found: a later instance's copy replaces an earlier
    # one in constant time (two instances writing the same 20,000 names was quadratic).
    tasks: dict[tuple[str, str], UploadTask] = {}
    for (host, name), folder in folders.items():
        output = next(out for out in outputs if out.name == name)
        assert output.s3_uri is not None
        if not folder.is_dir():
            continue
        for relative in regular_files(folder, report.skipped):
            bucket, key = output_key(output.s3_uri, relative)
            if (bucket, key) in owner:
                report.collisions.append(
                    f"s3://{bucket}/{key} written by {owner[(bucket, key)]} and {host}; "
                    f"{host}'s copy is kept"
                )
                del tasks[(bucket, key)]
            owner[(bucket, key)] = host
            tasks[(bucket, key)] = UploadTask(folder / relative, bucket, key, host)

    def upload(task: UploadTask) -> None:
        try:
            store.upload_file(task.source, task.bucket, task.key, kms_key_id=kms_key_id)
        except Exception as err:  # noqa: BLE001 - one object's failure, whatever it is
            # Unreachable too: the job is recorded, so it must end Failed naming the object.
            # Anything else (a name that is not UTF-8 makes botocore raise UnicodeEncodeError)
            # fails this object alone, never the upload worker and the objects after it.
            report.failures.append(f"s3://{task.bucket}/{task.key}: {_describe_error(err)}")
            return
        report.uploaded.append(task)
        if on_upload is not None:
            on_upload(task)

    unfinished = run_abandonably(upload, list(tasks.values()), UPLOAD_WORKERS, abandoned)
    report.abandoned = [f"s3://{task.bucket}/{task.key}" for task in unfinished]
    return report


T = TypeVar("T")


def run_abandonably(
    work: Callable[[T], None],
    items: Sequence[T],
    workers: int,
    abandoned: Callable[[], bool] = lambda: False,
    poll_seconds: float = 0.1,
) -> list[T]:
    """Run `work` on every item, `workers` at a time, until all are done or `abandoned()` says
    to give up (a second Ctrl-C): then no further item starts, the caller is not kept waiting
    for the ones in flight (a frozen S3 can hold them for minutes), and the items not done are
    returned. The workers are daemon threads, so ones left hanging do not keep the process."""
    pending: queue.SimpleQueue[T] = queue.SimpleQueue()
    for item in items:
        pending.put(item)
    lock = threading.Lock()
    done: set[int] = set()
    errors: list[BaseException] = []

    def worker() -> None:
        while not abandoned():
            try:
                item = pending.get_nowait()
            except queue.Empty:
                return
            try:
                work(item)
            except BaseException as err:  # a bug in `work`: kept, raised once all are done
                errors.append(err)
            finally:
                with lock:
                    done.add(id(item))

    threads = [
        threading.Thread(target=worker, name="upload", daemon=True)
        for _ in range(max(1, min(workers, len(items))))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive() and not abandoned():
            thread.join(timeout=poll_seconds)
    if errors and not abandoned():
        raise errors[0]
    with lock:
        return [item for item in items if id(item) not in done]
