"""Deciding when a file is complete, for ContinuousUploader (continuous.py): events and sweeps arm
a file (a due time in one heap), and one scheduler thread looks at each file when it is due:
closed by its writer, or unchanged for settle_seconds, and not already in S3 in this version.
It also runs the slow sweep and the watchers' health check."""

from __future__ import annotations

import heapq
import os
import stat
import time

from localproc.transfer.continuous_snapshot import _kind
from localproc.transfer.continuous_state import PathId, Signature, _KeyState, _PathState, _signature
from localproc.transfer.upload import scan_files

# The safety net for events inotify could not deliver (watch limit on a new sub-folder, queue
# overflow): an lstat walk this often costs a few milliseconds per thousand files.
SWEEP_SECONDS = 15.0
# How often the watcher threads are checked for having stopped (see _stopped_watcher).
HEALTH_CHECK_SECONDS = 1.0


class _Scheduling:
    """The scheduling part of ContinuousUploader: the heap of due files (`_heap`) and each
    file's state (`_paths`), under the uploader's lock."""

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
