"""Pipe mode feeding, what the feeder must do whichever object store it reads, tested once against
each: tests/unit/test_pipe.py against the folder store, tests/integration/test_pipe_s3.py
against S3 through a real endpoint. Each defines the `bucket` fixture these ask for; the FIFO
reader and the feeder are shared too."""

from __future__ import annotations

import gzip
import hashlib
import os
import threading
from collections.abc import Callable
from pathlib import Path

from localproc.runtime.docker_run import make_fifo
from localproc.storage import FolderStore, ObjectInfo, ObjectStore
from localproc.transfer.pipe import PipeFeeder

MB = 1024 * 1024
WAIT = 20.0  # seconds a feeder may take to finish by itself in these tests
PROMPT = 1.0  # seconds within which stop() must end a feeder


class Bucket:
    """A bucket in a store of either kind, with a way to put and delete objects behind the
    store's back (as another writer would)."""

    def __init__(
        self,
        store: ObjectStore,
        name: str,
        put: Callable[[str, bytes], None],
        delete: Callable[[str], None],
    ) -> None:
        self.store = store
        self.name = name
        self.put = put
        self.delete = delete

    def objects(self, contents: dict[str, bytes]) -> list[ObjectInfo]:
        """Store `contents` and return their infos in the dict's order (not key order)."""
        for key, body in contents.items():
            self.put(key, body)
        infos = [self.store.head_object(self.name, key) for key in contents]
        assert all(info is not None for info in infos)
        return [info for info in infos if info is not None]


def folder_bucket(root: Path) -> Bucket:
    (root / "bucket").mkdir(parents=True)

    def put(key: str, body: bytes) -> None:
        path = root / "bucket" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)

    return Bucket(FolderStore(root), "bucket", put, lambda key: (root / "bucket" / key).unlink())


class Reader:
    """Reads the FIFO on a thread as a container would: blocking open, reads until EOF (or
    `limit` bytes, then closes early). Keeps a digest and a count, not the bytes, unless
    asked to."""

    def __init__(self, fifo: Path, *, limit: int | None = None, keep: bool = True) -> None:
        self.fifo = fifo
        self.limit = limit
        self.keep = keep
        self.data = bytearray()
        self.count = 0
        self.digest = hashlib.sha256()
        self.saw_eof = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with open(self.fifo, "rb", buffering=0) as pipe:
            while self.limit is None or self.count < self.limit:
                want = 64 * 1024 if self.limit is None else min(64 * 1024, self.limit - self.count)
                chunk = pipe.read(want)
                if not chunk:
                    self.saw_eof = True
                    return
                self.count += len(chunk)
                self.digest.update(chunk)
                if self.keep:
                    self.data += chunk

    def join(self, timeout: float = WAIT) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()


def feeder_for(
    tmp_path: Path, objects: list[ObjectInfo], store: ObjectStore, *, gzip: bool = False
) -> PipeFeeder:
    fifo = tmp_path / "mount" / "data_0"
    make_fifo(fifo)
    return PipeFeeder(fifo, objects, store, gzip, "data")


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def test_objects_stream_in_the_given_order(bucket: Bucket, tmp_path: Path) -> None:
    objects = bucket.objects({"p/c.csv": b"c" * 3000, "p/a.csv": b"a" * 10, "p/b/x.csv": b"bbb"})
    feeder = feeder_for(tmp_path, objects, bucket.store)

    feeder.start()
    reader = Reader(feeder.fifo_path)

    assert reader.join() and feeder.wait(WAIT)
    assert bytes(reader.data) == b"c" * 3000 + b"a" * 10 + b"bbb" and reader.saw_eof
    assert feeder.error() is None
    assert feeder.bytes_written() == 3013
    assert feeder.reader_opened and not feeder.reader_closed_early


def test_gzip_objects_are_decompressed(bucket: Bucket, tmp_path: Path) -> None:
    objects = bucket.objects(
        {
            "z/one.gz": gz(b"first object\n"),
            # `cat a.gz b.gz`: one object holding two gzip members
            "z/two.gz": gz(b"second, member 1\n") + gz(b"second, member 2\n"),
            "z/empty.gz": b"",
            "z/padded.gz": gz(b"padded\n") + b"\0" * 512,  # as tape tools pad archives
            "z/big.gz": gz(bytes(range(256)) * 20_000),  # decompresses over several chunks
        }
    )
    feeder = feeder_for(tmp_path, objects, bucket.store, gzip=True)

    feeder.start()
    reader = Reader(feeder.fifo_path)

    assert reader.join() and feeder.wait(WAIT)
    expected = (
        b"first object\nsecond, member 1\nsecond, member 2\npadded\n" + bytes(range(256)) * 20_000
    )
    assert bytes(reader.data) == expected
    assert feeder.error() is None and feeder.bytes_written() == len(expected)


def test_reader_that_closes_early_ends_the_feeder_without_error(
    bucket: Bucket, tmp_path: Path
) -> None:
    # Far more than the pipe holds, so the feeder is still writing when the reader leaves.
    objects = bucket.objects({"big/1": os.urandom(8 * MB), "big/2": os.urandom(MB)})
    feeder = feeder_for(tmp_path, objects, bucket.store)

    feeder.start()
    reader = Reader(feeder.fifo_path, limit=10)

    assert reader.join() and reader.count == 10
    assert feeder.wait(WAIT), "the feeder must end by itself when the reader closes the pipe"
    assert feeder.error() is None
    assert feeder.reader_closed_early
    assert 10 <= feeder.bytes_written() < 9 * MB


def test_object_deleted_before_streaming_fails_with_client_error(
    bucket: Bucket, tmp_path: Path
) -> None:
    objects = bucket.objects({"p/1": b"first", "p/2": b"second", "p/3": b"third"})
    bucket.delete("p/2")  # after the listing, before the feeder gets to it
    feeder = feeder_for(tmp_path, objects, bucket.store)

    feeder.start()
    reader = Reader(feeder.fifo_path)

    # The reader gets what could be streamed, then end-of-file: it must not hang.
    assert reader.join() and reader.saw_eof and bytes(reader.data) == b"first"
    assert feeder.wait(WAIT)
    failure = feeder.error()
    assert failure is not None
    assert failure.reason.startswith(
        f"ClientError: Cannot stream s3://{bucket.name}/p/2 into the pipe of input 'data': "
    )
    assert "NoSuchKey" in failure.reason


def test_object_replaced_before_streaming_fails(bucket: Bucket, tmp_path: Path) -> None:
    objects = bucket.objects({"p/1": b"listed version"})
    bucket.put("p/1", b"a replacement of another size")
    feeder = feeder_for(tmp_path, objects, bucket.store)

    feeder.start()
    reader = Reader(feeder.fifo_path)

    assert reader.join() and reader.data == b"" and feeder.wait(WAIT)
    failure = feeder.error()
    assert failure is not None and "PreconditionFailed" in failure.reason
