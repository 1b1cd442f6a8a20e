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

The uploader is one object with one lock over its bookkeeping (continuous_state.py), put
together from its parts: continuous_watcher.py (the observers), continuous_scheduler.py (when a
file is looked at), continuous_workers.py (the uploads and the final pass) and
continuous_snapshot.py (what is read of a file). This module holds its lifecycle.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from localproc.payload.job import OutputSpec
from localproc.storage import ObjectStore

# The parts of the uploader, each in its module: the watching, the scheduling of looks at files,
# the uploads and the final pass; snapshots and the bookkeeping types. The names other modules
# and the tests import from here stay importable from here.
from localproc.transfer.continuous_scheduler import HEALTH_CHECK_SECONDS, SWEEP_SECONDS, _Scheduling
from localproc.transfer.continuous_snapshot import RACY_NS, _kind
from localproc.transfer.continuous_state import BucketKey, PathId, Signature, _KeyState, _PathState
from localproc.transfer.continuous_watcher import POLL_SECONDS, _watcher_failures, _Watching
from localproc.transfer.continuous_workers import _Uploading
from localproc.transfer.upload import (
    UPLOAD_WORKERS,
    UploadReport,
    UploadTask,
    output_key,
)

__all__ = [
    "HEALTH_CHECK_SECONDS",
    "POLL_SECONDS",
    "RACY_NS",
    "SWEEP_SECONDS",
    "BucketKey",
    "ContinuousTarget",
    "ContinuousUploader",
    "PathId",
    "Signature",
]

if TYPE_CHECKING:
    from watchdog.observers.api import BaseObserver

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ContinuousTarget:
    host: str  # algo-1 ...
    output: OutputSpec  # output.s3_uri is set
    folder: Path  # host folder bind-mounted at the output's LocalPath in the container


class ContinuousUploader(_Watching, _Scheduling, _Uploading):
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

    # --- helpers shared by the parts ----------------------------------------------------------

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
