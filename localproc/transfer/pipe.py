"""Pipe mode: an input's objects streamed, in order, into a named pipe the container reads.

Nothing is staged on disk: each object is read from the store in 1 MiB chunks (decompressed on
the way when S3CompressionType is Gzip) and written into a FIFO that lives in a host folder
bind-mounted into the container. The container sees the objects as one continuous byte stream
followed by end-of-file, as with SageMaker's Pipe mode.

Whatever the container does, the feeder never holds the job: it waits for a reader without
blocking, treats a reader that goes away (EPIPE) as the end of the stream rather than an error,
and ends within a fraction of a second of `stop()`.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import select
import stat
import threading
import zlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from localproc.errors import JobFailure, client_error, internal_error
from localproc.storage import ObjectInfo, ObjectStore, StoreError, StoreUnreachable

# Objects are read and written in pieces of this size, so memory stays bounded whatever the
# objects weigh; gzip output is capped at the same size per step (a tiny object can inflate to
# gigabytes).
CHUNK_BYTES = 1024 * 1024
# How often the feeder looks at the stop flag while it waits for a reader or for room in the
# pipe: short enough that `stop()` feels immediate, long enough to cost nothing.
_POLL_SECONDS = 0.05
# wbits for zlib: 16 + MAX_WBITS expects the gzip header and trailer (and checks the CRC).
_GZIP_WBITS = 16 + zlib.MAX_WBITS


class _Stopped(Exception):
    """The job ended (stop() was called) while the feeder was still working."""


class _CorruptGzip(Exception):
    """An object is not valid gzip data (bad header, bad CRC, truncated)."""


class PipeFeeder:
    """Streams `objects` into the FIFO at `fifo_path` on a daemon thread.

    Lifecycle: `start()` before (or right after) the container starts; `stop()` once the
    container has exited, whatever happened; then `error()` tells whether the job must fail.
    """

    def __init__(
        self,
        fifo_path: Path,
        objects: Sequence[ObjectInfo],
        store: ObjectStore,
        gzip: bool,
        input_name: str,
    ) -> None:
        self.fifo_path = Path(fifo_path)
        self.objects = tuple(objects)
        self.input_name = input_name
        self._store = store
        self._gzip = gzip
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: JobFailure | None = None
        self._bytes_written = 0
        self._reader_opened = False
        self._reader_closed_early = False
        # Taken now, at staging, before any container exists that could swap the FIFO.
        self._made = self._fifo_identity()

    # --- control -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the feeding thread. It first waits for a reader to open the FIFO."""
        if self._thread is not None:
            raise RuntimeError(f"the pipe feeder of input '{self.input_name}' was already started")
        self._thread = threading.Thread(
            target=self._run, name=f"pipe-feeder-{self.input_name}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """The job ended: make the thread finish (without a reader, or with a reader that stopped
        reading) and wait up to `timeout` seconds for it. Safe to call more than once, and
        before `start()`.

        The thread notices within _POLL_SECONDS, except while it waits on the store itself
        (bounded by the store's read timeout); it is a daemon, so it never keeps the process
        alive.
        """
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the thread to end by itself (all objects written, the reader gone, or an
        error); True when it has ended."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # --- outcome -------------------------------------------------------------------------------

    def error(self) -> JobFailure | None:
        """Why the stream could not be completed, once the thread has ended: a ClientError naming
        the object and the input (missing, unreadable, not valid gzip), or an
        InternalServerError when the FIFO itself failed. None when every object was written, the
        reader closed the pipe early, no reader came, or the feeder was stopped first."""
        return self._error

    def bytes_written(self) -> int:
        """Bytes written into the pipe so far (after decompression)."""
        return self._bytes_written

    @property
    def reader_opened(self) -> bool:
        """Whether a reader ever opened the FIFO (worth a warning when a job never did)."""
        return self._reader_opened

    @property
    def reader_closed_early(self) -> bool:
        """Whether the reader closed the pipe before every byte was written."""
        return self._reader_closed_early

    # --- the thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            fd = self._open_for_writing()
            if fd is None:
                return  # stopped before any reader came: nothing to report
            try:
                self._feed(fd)
            finally:
                # Closing the only write end is what makes the reader see end-of-file.
                os.close(fd)
        except BrokenPipeError:
            # The reader closed its end: it has read what it wanted. Not the job's failure.
            self._reader_closed_early = True
        except _Stopped:
            pass
        except JobFailure as failure:
            self._error = failure
        except Exception as exc:
            # A bug or a broken FIFO: record it so the job fails visibly instead of reading as a
            # success, then let the thread's excepthook print the traceback.
            self._error = internal_error(
                f"Pipe mode of input '{self.input_name}' failed writing {self.fifo_path}: {exc!r}"
            )
            raise

    def _open_for_writing(self) -> int | None:
        """The FIFO opened for writing once a reader has it open, or None if stopped first.

        A plain open(O_WRONLY) would block in the kernel until a reader comes, and nothing could
        interrupt it if the container exits without ever opening the pipe. With O_NONBLOCK the
        open fails with ENXIO while there is no reader, so it is retried until the stop flag is
        set. (Opening O_RDWR would never block either, but then the feeder would itself count as
        a reader: it would never get EPIPE when the real reader leaves, and would block forever
        on a full pipe instead.) The descriptor stays non-blocking: writes wait in poll() with a
        timeout, so a reader that stops reading without closing cannot hang the feeder either.
        """
        # The FIFO lives in a folder the container may write to: it can swap the FIFO for a
        # symlink to a host FIFO, which this process (often root) must never open. O_NOFOLLOW
        # refuses a symlink (ELOOP) before anything is opened, and the inode made at staging
        # must be the one opened.
        made = self._made
        while not self._stop.is_set():
            try:
                fd = os.open(
                    self.fifo_path, os.O_WRONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC
                )
            except OSError as exc:
                if exc.errno != errno.ENXIO and made is None:  # staging never made it
                    raise internal_error(
                        f"Cannot open the pipe of input '{self.input_name}' at "
                        f"{self.fifo_path}: {exc}"
                    ) from exc
                if exc.errno != errno.ENXIO:
                    raise client_error(
                        f"The pipe of input '{self.input_name}' cannot be opened (the container "
                        f"replaced or removed {self.fifo_path.name}): {exc.strerror or exc}"
                    ) from exc
                self._stop.wait(_POLL_SECONDS)
                continue
            opened = os.fstat(fd)
            if not stat.S_ISFIFO(opened.st_mode) or (
                made is not None and (opened.st_dev, opened.st_ino) != made
            ):
                os.close(fd)
                raise client_error(
                    f"The pipe of input '{self.input_name}' at {self.fifo_path} was replaced "
                    "by the container; it is fed only through the FIFO localproc made"
                )
            self._reader_opened = True
            return fd
        return None

    def _fifo_identity(self) -> tuple[int, int] | None:
        """The FIFO as staging made it (device, inode), read before the container can start."""
        try:
            made = os.lstat(self.fifo_path)
        except OSError:
            return None
        return (made.st_dev, made.st_ino) if stat.S_ISFIFO(made.st_mode) else None

    def _feed(self, fd: int) -> None:
        # A bigger pipe buffer means fewer wake-ups per MiB; the kernel may refuse the size
        # (/proc/sys/fs/pipe-max-size), which only costs speed.
        set_pipe_size = getattr(fcntl, "F_SETPIPE_SZ", None)
        if set_pipe_size is not None:
            with contextlib.suppress(OSError):
                fcntl.fcntl(fd, set_pipe_size, CHUNK_BYTES)
        writable = select.poll()
        writable.register(fd, select.POLLOUT)
        for obj in self.objects:
            self._feed_object(fd, writable, obj)

    def _feed_object(self, fd: int, writable: select.poll, obj: ObjectInfo) -> None:
        where = f"s3://{obj.bucket}/{obj.key}"
        try:
            with self._store.open_object(obj) as source:
                chunks: Iterable[bytes] = _chunks(source)
                if self._gzip:
                    chunks = _gunzip(chunks)
                for chunk in chunks:
                    self._write_all(fd, writable, chunk)
        except (StoreError, StoreUnreachable) as err:
            raise client_error(
                f"Cannot stream {where} into the pipe of input '{self.input_name}': {err}"
            ) from err
        except _CorruptGzip as err:
            raise client_error(
                f"Cannot decompress {where} of input '{self.input_name}' (S3CompressionType "
                f"Gzip): it is not valid gzip data: {err}"
            ) from err

    def _write_all(self, fd: int, writable: select.poll, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self._stop.is_set():
                raise _Stopped
            try:
                # Raises BrokenPipeError once the reader has closed (Python ignores SIGPIPE).
                written = os.write(fd, view)
            except BlockingIOError:
                # The pipe is full: wait for the reader to make room, looking at the stop flag
                # between waits. poll() also wakes when the reader closes (POLLERR).
                writable.poll(int(_POLL_SECONDS * 1000))
                continue
            self._bytes_written += written
            view = view[written:]


def _chunks(source: BinaryIO) -> Iterator[bytes]:
    while chunk := source.read(CHUNK_BYTES):
        yield chunk


def _gunzip(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Decompress a gzip stream of one or more members (as `cat a.gz b.gz` makes), yielding at
    most CHUNK_BYTES at a time. Zero bytes between or after members are skipped, as gzip does."""
    decoder: zlib._Decompress | None = None
    for data in chunks:
        while True:
            if decoder is None:
                data = data.lstrip(b"\0")
                if not data:
                    break
                decoder = zlib.decompressobj(_GZIP_WBITS)
            try:
                out = decoder.decompress(data, CHUNK_BYTES)
            except zlib.error as exc:
                raise _CorruptGzip(str(exc)) from exc
            if out:
                yield out
            if decoder.eof:
                # This member is complete; whatever follows starts the next one.
                data = decoder.unused_data
                decoder = None
                continue
            data = decoder.unconsumed_tail
            # A full-sized output may leave decompressed bytes pending inside zlib even with no
            # input left: ask again before fetching more input.
            if not data and len(out) < CHUNK_BYTES:
                break
    if decoder is not None:
        raise _CorruptGzip("the data ends in the middle of a gzip stream (truncated object?)")
