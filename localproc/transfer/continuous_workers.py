"""The uploads of ContinuousUploader (continuous.py): a file that is due goes to a pool of worker
threads, which snapshot it and send the snapshot, one upload per S3 key at a time; and the
final pass at the end, which sends every file whose final content S3 does not hold yet."""

from __future__ import annotations

import time
from concurrent.futures import Future
from concurrent.futures import wait as wait_for

from localproc.storage import StoreError, StoreUnreachable
from localproc.transfer.continuous_snapshot import _NotRegular, _Snapshot, _snapshot
from localproc.transfer.continuous_state import (
    BucketKey,
    PathId,
    Signature,
    _KeyState,
    _PathState,
    _signature,
    _Version,
)
from localproc.transfer.upload import UploadTask, scan_files

# At the end the containers have exited, so a file still changing under us is an anomaly; a few
# tries tell a last straggling write from something that keeps writing.
_FINAL_ATTEMPTS = 3


class _Uploading:
    """The uploading part of ContinuousUploader: the worker pool (`_pool`, `_futures`), each
    key's state (`_keys`) and the report, under the uploader's lock."""

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
