"""Continuous outputs: files a container writes under a `Continuous` output's LocalPath reach the
output's S3Uri while the job runs, and the S3 prefix matches each folder's final content when it
ends.

Why watchdog with inotify rather than scanning: a scan has to stat every file of every output
folder on every round, so its cost grows with the number of files and its latency is the scan
interval. inotify makes the kernel tell us exactly which file changed, and when a writer closed
it (IN_CLOSE_WRITE, the best "this file is complete" signal there is), at no cost while nothing
happens. watchdog is the maintained Python binding: it adds watches for sub-folders the container
creates (reporting what they already hold) and never follows symlinked folders.

inotify can be unavailable: no inotify on this system, or the per-user limits
(`fs.inotify.max_user_instances`, `fs.inotify.max_user_watches`) reached. Then watchdog's polling
observer watches the folder instead: one `lstat` walk per second, so it never follows a symlink
either. A watch limit reached for a sub-folder created later is swallowed by watchdog, and a
kernel event-queue overflow loses events; a slow sweep (every `sweep_seconds`) re-arms any file
whose content was not uploaded yet, so such files still arrive while the job runs, and the final
pass in `finish()` catches everything in any case.

watchdog's inotify reader is one thread per process, and it can die of a race of its own
(a KeyError when folders are renamed back and forth while it adds and removes watches; stopping
it can raise the same). Its death is caught by a `threading.excepthook` (so no traceback reaches
the terminal): the uploader says so in one line and goes on with the polling observer, which
has no such state to lose, so uploads stay prompt instead of waiting for the sweep.

A file is uploaded once it is complete: its writer closed it, or it stayed unchanged for
`settle_seconds` (by its own ctime, or by two identical stats that far apart). Events only say
*which* file to look at; what is uploaded is decided on an open file descriptor: every path
component is opened with O_NOFOLLOW relative to its parent, the file must be regular by fstat,
and its content is copied to a private snapshot (hashed on the way) that is what gets uploaded.
When fstat before and after the copy differ, the copy may be torn: it is thrown away and the file
is looked at again later. A file that changes again is uploaded again; one key is uploaded by at
most one thread at a time, so what S3 holds is always the last snapshot we sent.
"""

from __future__ import annotations

import errno
import hashlib
import heapq
import itertools
import logging
import os
import shutil
import stat
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from localproc.payload.job import OutputSpec
from localproc.storage import ObjectStore, StoreError, StoreUnreachable
from localproc.transfer.upload import (
    UPLOAD_WORKERS,
    UploadReport,
    UploadTask,
    output_key,
    scan_files,
)

if TYPE_CHECKING:
    from watchdog.events import FileSystemEvent
    from watchdog.observers.api import BaseObserver

_log = logging.getLogger(__name__)

# The safety net for events inotify could not deliver (watch limit on a new sub-folder, queue
# overflow): an lstat walk this often costs a few milliseconds per thousand files.
SWEEP_SECONDS = 15.0
# The polling observer's interval when inotify is unavailable.
POLL_SECONDS = 1.0
# How often the watcher threads are checked for having stopped (see _stopped_watcher).
HEALTH_CHECK_SECONDS = 1.0
# A snapshot taken this close to the file's last change cannot prove by (size, mtime, ctime) that
# no write followed in the same timestamp tick (git's "racy clean" problem; some filesystems keep
# whole or even two-second times), so the final pass compares such files by content.
RACY_NS = 2_000_000_000
_COPY_CHUNK = 1024 * 1024
# At the end the containers have exited, so a file still changing under us is an anomaly; a few
# tries tell a last straggling write from something that keeps writing.
_FINAL_ATTEMPTS = 3

# (st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns): changes whenever the content can have.
Signature = tuple[int, int, int, int, int]
# A file of one target: (index of the target, '/'-path relative to its folder).
PathId = tuple[int, str]
BucketKey = tuple[str, str]


@dataclass(frozen=True)
class ContinuousTarget:
    host: str  # algo-1 ...
    output: OutputSpec  # output.s3_uri is set
    folder: Path  # host folder bind-mounted at the output's LocalPath in the container


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


@dataclass
class _Snapshot:
    temp: Path
    signature: Signature
    digest: bytes
    size: int
    racy: bool
    torn: bool


class _NotRegular(Exception):
    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class ContinuousUploader:
    """Uploads the files of `targets` while containers write them; see the module docstring.

    Call `start()` before the containers start and `finish()` after they have all ended (also
    when the job failed or was stopped): it stops watching, uploads whatever is not in S3 in its
    final version yet, and returns the report. `on_upload` and `warn` are called from worker
    threads, so they must be thread-safe. `scratch_dir` is where the private snapshot folder is
    made (default: the system's temp dir); keep it on a disk with room for `UPLOAD_WORKERS`
    copies of the largest output file, and outside every watched folder.
    """

    def __init__(
        self,
        targets: Sequence[ContinuousTarget],
        store: ObjectStore,
        kms_key_id: str | None,
        settle_seconds: float = 0.5,
        on_upload: Callable[[UploadTask], None] | None = None,
        warn: Callable[[str], None] | None = None,
        *,
        scratch_dir: Path | None = None,
        sweep_seconds: float = SWEEP_SECONDS,
        workers: int = UPLOAD_WORKERS,
        use_inotify: bool = True,
    ) -> None:
        for target in targets:
            if target.output.s3_uri is None:
                raise ValueError(f"output {target.output.name!r} has no S3Uri to upload to")
        self._targets = list(targets)
        self._store = store
        self._kms_key_id = kms_key_id
        self._settle = settle_seconds
        self._on_upload = on_upload
        self._warn = warn if warn is not None else _log.warning
        self._scratch_parent = scratch_dir
        self._sweep_every = sweep_seconds
        self._workers = workers
        self._use_inotify = use_inotify

        # One lock guards all bookkeeping below; nothing slow (I/O, callbacks) runs under it.
        self._cond = threading.Condition()
        self._paths: dict[PathId, _PathState] = {}
        self._keys: dict[BucketKey, _KeyState] = {}
        self._heap: list[tuple[float, int, PathId]] = []
        self._sequence = itertools.count()
        self._futures: set[Future[None]] = set()
        self._errors: list[BaseException] = []
        self._skipped: set[PathId] = set()
        self._report = UploadReport()
        self._stopping = False
        self._started = False
        self._finished = False

        self._pool: ThreadPoolExecutor | None = None
        self._scratch: Path | None = None
        self._scheduler: threading.Thread | None = None
        self._observers: list[BaseObserver] = []
        self._watcher_failure: str | None = None  # watchdog's own thread died of this
        self._watcher_failures_seen = 0

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Begin watching; returns at once. The target folders must exist."""
        if self._started:
            raise RuntimeError("ContinuousUploader.start() was already called")
        for target in self._targets:
            if not target.folder.is_dir():
                raise FileNotFoundError(f"output folder {target.folder} does not exist")
        self._started = True
        self._prepare()
        _watcher_failures.subscribe(self)
        try:
            self._scheduler = threading.Thread(
                target=self._run_scheduler, name="localproc-continuous", daemon=True
            )
            self._scheduler.start()
            self._watch()
            # Files that exist already (a folder re-used, or written before the watch was in
            # place) produce no events; the first sweep arms them.
            self._sweep()
        except BaseException:
            # No thread may outlive a failed start; finish() can still do the final pass.
            self._stop_watching()
            raise

    def finish(self) -> UploadReport:
        """Stop watching, make each output's S3 prefix match its folders' final content, and
        return every upload made and every object whose final content could not be uploaded
        (`failures`; an earlier failed attempt that a later upload made good is not listed)."""
        if self._finished:
            return self._report
        self._finished = True
        self._stop_watching()
        self._prepare()
        try:
            self._drain()
            final_keys = self._final_pass()
            self._drain()
        finally:
            assert self._pool is not None
            self._pool.shutdown(wait=True)
            if self._scratch is not None:
                shutil.rmtree(self._scratch, ignore_errors=True)
        with self._cond:
            self._report.failures.extend(
                state.failure
                for key, state in sorted(self._keys.items())
                if state.failure is not None and key in final_keys
            )
            errors = list(self._errors)
        if errors:
            # A bug in a worker or a callback; it must not pass as a quiet success.
            raise errors[0]
        return self._report

    def _stop_watching(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        # Pending events are dropped on purpose: the final pass looks at every file anyway.
        self._stop_observers(self._observers)
        self._observers = []
        _watcher_failures.unsubscribe(self)
        if self._scheduler is not None and self._scheduler.is_alive():
            self._scheduler.join()

    def _stop_observers(self, observers: Sequence[BaseObserver]) -> None:
        """Stop them; watchdog's inotify code can fail while stopping (the race that kills its
        thread): what is lost is only events, which the final pass and the sweep make up for."""
        for observer in observers:
            try:
                observer.stop()
                observer.join()
            except Exception as err:  # a bug of the watcher library, not of this job
                self._warn(f"the output file watcher failed while stopping ({err!r}); ignored")

    def _prepare(self) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                max_workers=self._workers, thread_name_prefix="localproc-upload"
            )
        if self._scratch is None:
            # mkdtemp makes it 0700: snapshots of the job's files are readable by us alone.
            self._scratch = Path(
                tempfile.mkdtemp(prefix="localproc-continuous-", dir=self._scratch_parent)
            )

    # --- watching -------------------------------------------------------------------------------

    def _watch(self) -> None:
        from watchdog.events import (
            FileClosedEvent,
            FileCreatedEvent,
            FileModifiedEvent,
            FileMovedEvent,
        )
        from watchdog.utils import UnsupportedLibcError

        # watchdog's inotify code warns when a folder created by `mkdir -p` is watched twice (the
        # second watch replaces the first, which is what we want); that would only be noise on
        # the user's terminal.
        warnings.filterwarnings(
            "ignore",
            message="Callback with id .* already exists for watch",
            category=RuntimeWarning,
            module="watchdog",
        )
        # Only what can make a file complete or changed: no IN_OPEN/IN_CLOSE_NOWRITE, so our own
        # snapshot reads do not come back to us as events.
        event_filter = [FileCreatedEvent, FileModifiedEvent, FileClosedEvent, FileMovedEvent]
        inotify: BaseObserver | None = None
        if self._use_inotify:
            try:
                from watchdog.observers.inotify import InotifyObserver

                inotify = InotifyObserver()
                inotify.start()
                self._observers.append(inotify)
            except (ImportError, OSError, UnsupportedLibcError) as err:
                self._warn(
                    f"inotify is not available ({err}); watching output folders by polling "
                    f"every {POLL_SECONDS:g} s instead"
                )
                inotify = None
        polling: BaseObserver | None = None
        for index, target in enumerate(self._targets):
            handler = _make_handler(self, index)
            if inotify is not None:
                try:
                    inotify.schedule(
                        handler, str(target.folder), recursive=True, event_filter=event_filter
                    )
                    continue
                except OSError as err:
                    self._warn(
                        f"cannot watch {target.folder} with inotify ({_describe_os_error(err)}); "
                        f"polling it every {POLL_SECONDS:g} s instead"
                    )
            if polling is None:
                from watchdog.observers.polling import PollingObserverVFS

                # lstat, not stat: the plain polling observer would walk into symlinked folders.
                polling = PollingObserverVFS(os.lstat, os.scandir, polling_interval=POLL_SECONDS)
                polling.start()
                self._observers.append(polling)
            polling.schedule(handler, str(target.folder), recursive=True, event_filter=event_filter)

    def watcher_died(self, description: str) -> None:
        """Called (from the dying thread) when one of watchdog's threads ends with an error."""
        with self._cond:
            if self._watcher_failure is None:
                self._watcher_failure = description
            self._cond.notify_all()

    def _watch_by_polling(self, failure: str) -> None:
        """Replace every observer with a new polling one: after inotify's reader died, and
        again should a polling thread die (a folder vanishing mid-walk): polling keeps no
        state that a race could corrupt, so a new one simply starts over."""
        from watchdog.observers.polling import PollingObserverVFS

        with self._cond:
            if self._stopping:
                return
            self._watcher_failures_seen += 1
            first = self._watcher_failures_seen == 1
        if first:
            self._warn(
                f"the watcher of the output folders failed ({failure}); watching them by "
                f"polling every {POLL_SECONDS:g} s instead"
            )
        dead, self._observers = self._observers, []
        self._stop_observers(dead)
        _forget_dead_inotify_reader()
        polling = PollingObserverVFS(os.lstat, os.scandir, polling_interval=POLL_SECONDS)
        for index, target in enumerate(self._targets):
            polling.schedule(_make_handler(self, index), str(target.folder), recursive=True)
        polling.start()
        with self._cond:
            if self._stopping:  # finish() came meanwhile and has stopped the others
                polling.stop()
                return
            self._observers.append(polling)
        self._sweep()  # what changed while nothing watched

    def _on_event(self, index: int, event: FileSystemEvent) -> None:
        """Called on watchdog's dispatch thread, which must never see an exception."""
        kind = event.event_type
        if event.is_directory and kind not in ("created", "moved"):
            # watchdog reports the files of a new or moved-in folder as file events of their own.
            return
        # A folder's event is looked at too: the polling observer matches entries by inode, so
        # a new file that got the inode of a folder deleted meanwhile comes as that folder
        # "moved" to the file's name. What the path is now is decided by lstat in _evaluate.
        path = event.dest_path if kind == "moved" else event.src_path
        relative = _relative(self._targets[index].folder, os.fsdecode(path))
        if relative is None:
            return
        # A rename into place is how careful writers publish a complete file.
        self._changed((index, relative), closed=kind in ("closed", "moved"))

    def _changed(self, path: PathId, *, closed: bool) -> None:
        now = time.monotonic()
        with self._cond:
            if self._stopping:
                return
            state = self._paths.setdefault(path, _PathState())
            # Events arrive in order, so a modification after a close means it is being written
            # again, and only a new close or the settle time makes it complete.
            state.closed = closed
            state.due = now if closed else now + self._settle
            self._queue(path, state, state.due)

    def _queue(self, path: PathId, state: _PathState, due: float) -> None:
        """Keep at most one heap entry per path (a file written in small pieces makes thousands
        of events): push only when the new due time is earlier than the live entry's."""
        if state.queued is not None and state.queued <= due:
            return
        state.queued = due
        heapq.heappush(self._heap, (due, next(self._sequence), path))
        if self._heap[0][2] == path:
            self._cond.notify_all()

    # --- deciding when a file is complete ------------------------------------------------------

    def _run_scheduler(self) -> None:
        try:
            self._schedule()
        except BaseException as err:
            # Recorded so that finish() raises it: uploads must not stop silently mid-job.
            with self._cond:
                self._errors.append(err)
            raise

    def _schedule(self) -> None:
        """Sleeps until the next file is due, the next sweep or the next look at the watchers'
        health (once a second: cheap), so it costs next to nothing idle."""
        next_sweep = time.monotonic() + self._sweep_every
        next_health_check = time.monotonic() + HEALTH_CHECK_SECONDS
        while True:
            with self._cond:
                while True:
                    if self._stopping:
                        return
                    if self._watcher_failure is not None:
                        break
                    now = time.monotonic()
                    wake = min(next_sweep, next_health_check)
                    if (self._heap and self._heap[0][0] <= now) or now >= wake:
                        break
                    self._cond.wait(min(self._heap[0][0], wake) - now if self._heap else wake - now)
                due_paths = self._pop_due(now)
                failure, self._watcher_failure = self._watcher_failure, None
            if failure is None and time.monotonic() >= next_health_check:
                failure = self._stopped_watcher()
                next_health_check = time.monotonic() + HEALTH_CHECK_SECONDS
            if failure is not None:
                self._watch_by_polling(failure)
                continue
            for path in due_paths:
                self._evaluate(path)
            if time.monotonic() >= next_sweep:
                self._sweep()
                next_sweep = time.monotonic() + self._sweep_every

    def _stopped_watcher(self) -> str | None:
        """A watcher that stopped without an error: watchdog's polling emitter stops itself when
        a sub-folder vanishes in the middle of its walk (it takes that for the watched folder
        being deleted), and reports nothing."""
        with self._cond:
            observers = list(self._observers)
        for observer in observers:
            if not observer.is_alive() or any(not e.is_alive() for e in observer.emitters):
                return f"its {type(observer).__name__} stopped"
        return None

    def _pop_due(self, now: float) -> list[PathId]:
        due_paths = []
        while self._heap and self._heap[0][0] <= now:
            due, _, path = heapq.heappop(self._heap)
            state = self._paths.get(path)
            if state is None or state.queued != due:
                continue  # superseded by an earlier entry for the same path
            state.queued = None
            if state.due is not None and state.due > now:
                self._queue(path, state, state.due)  # it changed again after being queued
                continue
            state.due = None
            due_paths.append(path)
        return due_paths

    def _evaluate(self, path: PathId) -> None:
        index, relative = path
        try:
            # Only a hint for the settle test; what is read is checked again on the open fd.
            info = os.lstat(self._targets[index].folder / relative)
        except OSError:
            return  # gone (deletions are not propagated) or a folder on its way is not one
        if not stat.S_ISREG(info.st_mode):
            if not stat.S_ISDIR(info.st_mode):
                self._skip(path, _kind(info.st_mode))
            return
        signature = _signature(info)
        now = time.monotonic()
        with self._cond:
            state = self._paths[path]
            if state.due is not None or self._stopping:
                return  # changed again meanwhile: it is queued already
            if not state.closed:
                wait = self._unsettled_for(state, signature, info, now)
                if wait > 0:
                    state.due = now + wait
                    self._queue(path, state, state.due)
                    return
            key_state = self._keys.setdefault(self._bucket_key(path), _KeyState())
            if key_state.in_flight:
                key_state.waiting.add(path)
                return
            done = state.done
            state.closed = False
            if (
                done is not None
                and done.signature == signature
                and not done.racy
                and key_state.holder == path
            ):
                return  # an attribute change, or a sweep: S3 has this content already
            self._submit(path, final=False)

    def _unsettled_for(
        self, state: _PathState, signature: Signature, info: os.stat_result, now: float
    ) -> float:
        """Seconds the file still has to stay unchanged; 0 when it has been for settle_seconds.

        Its own ctime (set by every write, and by the kernel's clock that this host shares with
        the containers) usually says so at the first look; two equal stats settle_seconds apart
        decide when that clock cannot be trusted (a ctime in the future).
        """
        if state.seen != signature:
            state.seen, state.seen_at = signature, now
        steady = now - state.seen_at
        age = (time.time_ns() - max(info.st_mtime_ns, info.st_ctime_ns)) / 1e9
        return max(0.0, self._settle - max(steady, age))

    def _sweep(self) -> None:
        """Arm every file whose current content this uploader has not handled, for the events
        that inotify could not deliver."""
        now = time.monotonic()
        for index, target in enumerate(self._targets):
            skipped: list[str] = []
            try:
                found = list(scan_files(target.folder, skipped))
            except OSError as err:
                self._warn(f"cannot scan {target.folder} for new output files: {err}")
                continue
            for relative in skipped:
                self._skip_found(index, relative)
            with self._cond:
                if self._stopping:
                    return
                for relative, info in found:
                    path = (index, relative)
                    state = self._paths.setdefault(path, _PathState())
                    if state.due is not None or state.queued is not None:
                        continue
                    key_state = self._keys.get(self._bucket_key(path))
                    if key_state is not None and (key_state.in_flight or path in key_state.waiting):
                        continue
                    if state.done is not None and state.done.signature == _signature(info):
                        continue
                    state.due = now
                    self._queue(path, state, now)

    # --- uploading ------------------------------------------------------------------------------

    def _submit(self, path: PathId, *, final: bool) -> None:
        """Called with the lock held; marks the key in flight, so one upload per key at a time."""
        assert self._pool is not None
        self._keys[self._bucket_key(path)].in_flight = True
        future = self._pool.submit(self._upload, path, final)
        self._futures.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: Future[None]) -> None:
        error = future.exception()
        with self._cond:
            self._futures.discard(future)
            if error is not None:
                self._errors.append(error)

    def _drain(self) -> None:
        while True:
            with self._cond:
                pending = list(self._futures)
            if not pending:
                return
            wait_for(pending)

    def _upload(self, path: PathId, final: bool) -> None:
        index, relative = path
        target = self._targets[index]
        bucket_key = self._bucket_key(path)
        bucket, key = bucket_key
        look_again = False
        snapshot: _Snapshot | None = None
        try:
            snapshot = self._take_snapshot(path, final)
            if snapshot is None:
                return
            if snapshot.torn:
                if final:
                    self._fail(
                        bucket_key,
                        f"s3://{bucket}/{key}: {target.folder / relative} was still changing "
                        "after the containers ended; not uploaded",
                    )
                else:
                    look_again = True  # being written: wait for its close or for it to settle
                return
            with self._cond:
                # Same content as S3 holds under this key (a touch, a rewrite with the same
                # bytes, a racy file checked at the end): nothing to send.
                unchanged = self._keys[bucket_key].digest == snapshot.digest
            if not unchanged:
                try:
                    self._store.upload_file(snapshot.temp, bucket, key, kms_key_id=self._kms_key_id)
                except (StoreError, StoreUnreachable, OSError) as err:
                    self._fail(bucket_key, f"s3://{bucket}/{key}: {err}")
                    return
                except UnicodeError:  # botocore, for a key that is not valid UTF-8
                    self._fail(
                        bucket_key,
                        f"s3://{bucket}/{key}: the file's name is not valid UTF-8, which an S3 "
                        "key must be",
                    )
                    return
            task = UploadTask(target.folder / relative, bucket, key, target.host, snapshot.size)
            with self._cond:
                self._paths.setdefault(path, _PathState()).done = _Version(
                    snapshot.signature, snapshot.digest, snapshot.racy
                )
                key_state = self._keys[bucket_key]
                key_state.holder, key_state.digest, key_state.failure = path, snapshot.digest, None
                if not unchanged:
                    self._report.uploaded.append(task)
            if not unchanged and self._on_upload is not None:
                self._on_upload(task)
        finally:
            if snapshot is not None:
                snapshot.temp.unlink(missing_ok=True)
            self._release(path, bucket_key, look_again)

    def _take_snapshot(self, path: PathId, final: bool) -> _Snapshot | None:
        """A copy of the file (check `.torn`), or None when there is nothing to upload: gone, or
        not regular or unreadable (both reported)."""
        index, relative = path
        target = self._targets[index]
        bucket, key = self._bucket_key(path)
        assert self._scratch is not None
        attempts = _FINAL_ATTEMPTS if final else 1
        for attempt in range(1, attempts + 1):
            try:
                snapshot = _snapshot(target.folder, relative, self._scratch)
            except _NotRegular as err:
                self._skip(path, err.kind)
                return None
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                return None  # deleted or replaced by a folder: deletions are not propagated
            except OSError as err:
                self._fail(
                    (bucket, key),
                    f"s3://{bucket}/{key}: cannot read {target.folder / relative}: "
                    f"{err.strerror or err}",
                )
                return None
            if not snapshot.torn or attempt == attempts:
                return snapshot
            snapshot.temp.unlink(missing_ok=True)
            time.sleep(min(self._settle, 1.0))
        return None

    def _release(self, path: PathId, bucket_key: BucketKey, look_again: bool) -> None:
        """The key is free again: paths that became due meanwhile (or this one, when its copy was
        torn) are looked at again after settle_seconds, which also bounds how often one file that
        keeps being rewritten is uploaded."""
        due = time.monotonic() + self._settle
        with self._cond:
            key_state = self._keys[bucket_key]
            key_state.in_flight = False
            again = key_state.waiting
            key_state.waiting = set()
            if look_again:
                again.add(path)
            if self._stopping:
                return
            for waiting in again:
                state = self._paths[waiting]
                if state.due is None:
                    state.due = due
                self._queue(waiting, state, state.due)

    def _fail(self, bucket_key: BucketKey, message: str) -> None:
        with self._cond:
            self._keys[bucket_key].failure = message

    # --- the end ----------------------------------------------------------------------------------

    def _final_pass(self) -> set[BucketKey]:
        """Upload every file whose final content S3 does not hold under its key; returns the keys
        of the final files. When instances write the same key, the last target wins (as in
        `upload_outputs`: host order)."""
        winners: dict[BucketKey, PathId] = {}
        signatures: dict[PathId, Signature] = {}
        for index, target in enumerate(self._targets):
            skipped: list[str] = []
            try:
                found = list(scan_files(target.folder, skipped))
            except FileNotFoundError:
                continue  # the folder was never made: nothing was written
            except OSError as err:
                self._report.failures.append(f"cannot read output folder {target.folder}: {err}")
                continue
            for relative in skipped:
                self._skip_found(index, relative)
            for relative, info in found:
                path = (index, relative)
                bucket_key = self._bucket_key(path)
                earlier = winners.get(bucket_key)
                if earlier is not None:
                    self._report.collisions.append(
                        f"s3://{bucket_key[0]}/{bucket_key[1]} written by "
                        f"{self._targets[earlier[0]].host} and {target.host}; "
                        f"{target.host}'s copy is kept"
                    )
                winners[bucket_key] = path
                signatures[path] = _signature(info)
        with self._cond:
            for bucket_key, path in winners.items():
                key_state = self._keys.setdefault(bucket_key, _KeyState())
                state = self._paths.setdefault(path, _PathState())
                done = state.done
                if (
                    key_state.holder == path
                    and done is not None
                    and done.signature == signatures[path]
                    and not done.racy
                ):
                    key_state.failure = None  # e.g. a colliding path's failed attempt
                    continue
                self._submit(path, final=True)
        return set(winners)

    # --- helpers ------------------------------------------------------------------------------

    def _bucket_key(self, path: PathId) -> BucketKey:
        s3_uri = self._targets[path[0]].output.s3_uri
        assert s3_uri is not None
        return output_key(s3_uri, path[1])

    def _skip_found(self, index: int, relative: str) -> None:
        try:
            mode = os.lstat(self._targets[index].folder / relative).st_mode
        except OSError:
            return
        self._skip((index, relative), _kind(mode))

    def _skip(self, path: PathId, kind: str) -> None:
        """Warn once per path: a container must not get a host file uploaded through a symlink,
        and reading a FIFO or a device could block or have side effects."""
        index, relative = path
        target = self._targets[index]
        where = f"{target.output.local_path or target.folder}/{relative}"
        message = f"{target.host}: {where} is a {kind}; not uploaded"
        with self._cond:
            if path in self._skipped:
                return
            self._skipped.add(path)
            self._report.skipped.append(f"{target.host}:{where}")
        self._warn(message)


class _WatcherFailures:
    """One `threading.excepthook` for the process, installed while an uploader watches with
    inotify: an exception that ends one of watchdog's threads goes to the uploaders (as one
    line each), every other to the hook there was before."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._uploaders: set[ContinuousUploader] = set()
        self._previous: Callable[[threading.ExceptHookArgs], Any] | None = None

    def subscribe(self, uploader: ContinuousUploader) -> None:
        with self._lock:
            if not self._uploaders:
                self._previous = threading.excepthook
                threading.excepthook = self._hook
            self._uploaders.add(uploader)

    def unsubscribe(self, uploader: ContinuousUploader) -> None:
        with self._lock:
            if uploader not in self._uploaders:
                return
            self._uploaders.discard(uploader)
            if not self._uploaders and threading.excepthook == self._hook:
                threading.excepthook = self._previous or threading.__excepthook__

    def _hook(self, args: threading.ExceptHookArgs) -> None:
        thread_module = type(args.thread).__module__ if args.thread is not None else ""
        with self._lock:
            uploaders = list(self._uploaders)
            previous = self._previous or threading.__excepthook__
        if not thread_module.startswith("watchdog") or not uploaders:
            previous(args)
            return
        description = f"{args.exc_type.__name__}: {args.exc_value}"
        for uploader in uploaders:
            uploader.watcher_died(description)


_watcher_failures = _WatcherFailures()


def _forget_dead_inotify_reader() -> None:
    """watchdog keeps its one inotify reader thread in a class attribute; once that thread has
    died, a later watch in this process (another job run by the same process) must get a new
    one rather than the dead one. Private to watchdog, hence the care."""
    try:
        from watchdog.observers.inotify_c import InotifyFD
    except ImportError:
        return
    reader = getattr(InotifyFD, "_instance", None)
    if reader is not None and not reader.is_alive():
        InotifyFD._instance = None


def _make_handler(uploader: ContinuousUploader, index: int) -> Any:
    # Built here so that importing this module does not import watchdog.
    from watchdog.events import FileSystemEventHandler

    class _Handler(FileSystemEventHandler):
        def on_any_event(self, event: FileSystemEvent) -> None:
            uploader._on_event(index, event)

    return _Handler()


def _relative(folder: Path, path: str) -> str | None:
    """The '/'-path of `path` below `folder`, or None for the folder itself or anything that is
    not strictly below it: keys never leave the output's prefix."""
    prefix = str(folder).rstrip("/") + "/"
    if not path.startswith(prefix):
        return None
    relative = path[len(prefix) :]
    parts = relative.split("/")
    if not relative or any(part in ("", ".", "..") for part in parts):
        return None
    return relative


def _snapshot(folder: Path, relative: str, scratch: Path) -> _Snapshot:
    """Copy the file to a private temp file in `scratch`, hashing it on the way.

    Every component is opened relative to its parent with O_NOFOLLOW, so neither the file nor a
    folder on its way can be a symlink, even one planted between our look and our open; the
    type is checked before opening (no open of a FIFO or device at all) and again by fstat.
    """
    parts = relative.split("/")
    directory = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        for part in parts[:-1]:
            inner = os.open(
                part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=directory
            )
            os.close(directory)
            directory = inner
        mode = os.stat(parts[-1], dir_fd=directory, follow_symlinks=False).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "is a folder now", relative)
        if not stat.S_ISREG(mode):
            raise _NotRegular(_kind(mode))
        try:
            source = os.open(
                parts[-1],
                os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC,
                dir_fd=directory,
            )
        except OSError as err:
            if err.errno == errno.ELOOP:
                raise _NotRegular("symbolic link") from err
            raise
    finally:
        os.close(directory)
    try:
        before = os.fstat(source)
        if not stat.S_ISREG(before.st_mode):
            raise _NotRegular(_kind(before.st_mode))
        started = time.time_ns()
        handle, temp_name = tempfile.mkstemp(dir=scratch)
        temp = Path(temp_name)
        try:
            hasher = hashlib.blake2b(digest_size=20)
            size = 0
            with os.fdopen(handle, "wb") as out:
                while chunk := os.read(source, _COPY_CHUNK):
                    hasher.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
            after = os.fstat(source)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
    finally:
        os.close(source)
    signature = _signature(after)
    return _Snapshot(
        temp=temp,
        signature=signature,
        digest=hasher.digest(),
        size=size,
        racy=started - max(after.st_mtime_ns, after.st_ctime_ns) < RACY_NS,
        torn=_signature(before) != signature or size != after.st_size,
    )


def _signature(info: os.stat_result) -> Signature:
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "symbolic link"
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    if stat.S_ISDIR(mode):
        return "folder"
    return "special file"


def _describe_os_error(err: OSError) -> str:
    if err.errno == errno.ENOSPC:
        return "inotify watch limit reached; raise fs.inotify.max_user_watches"
    if err.errno == errno.EMFILE:
        return "inotify instance limit reached; raise fs.inotify.max_user_instances"
    return str(err)
