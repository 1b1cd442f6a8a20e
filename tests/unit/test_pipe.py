"""Pipe mode feeding: a real FIFO on this host, read by a thread the way a container reads it,
fed from a real S3 endpoint (moto's server) or the folder store. No Docker needed."""

from __future__ import annotations

import gzip
import hashlib
import os
import stat
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from s3_endpoint import S3Helper

from localproc.storage import FolderStore, ObjectInfo, ObjectStore, open_store
from localproc.transfer.pipe import PipeFeeder, make_fifo

# Every wait below is bounded; this only catches a hang the waits would not.
pytestmark = pytest.mark.timeout(120)

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


@pytest.fixture(params=["s3", "folder"])
def bucket(request: pytest.FixtureRequest, tmp_path: Path) -> Bucket:
    if request.param == "s3":
        s3: S3Helper = request.getfixturevalue("s3")
        name = s3.make_bucket()
        return Bucket(
            open_store(None, s3.endpoint_url, "us-east-1"),
            name,
            lambda key, body: s3.client.put_object(Bucket=name, Key=key, Body=body),
            lambda key: s3.client.delete_object(Bucket=name, Key=key),
        )
    return folder_bucket(tmp_path / "root")


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


# --- streaming -----------------------------------------------------------------------------------


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


def test_no_objects_gives_an_empty_stream(tmp_path: Path) -> None:
    feeder = feeder_for(tmp_path, [], folder_bucket(tmp_path / "root").store)

    feeder.start()
    reader = Reader(feeder.fifo_path)

    assert reader.join() and reader.saw_eof and reader.data == b""
    assert feeder.wait(WAIT) and feeder.error() is None


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


def test_without_gzip_compressed_objects_pass_through(tmp_path: Path) -> None:
    bucket = folder_bucket(tmp_path / "root")
    compressed = gz(b"stays compressed")
    feeder = feeder_for(tmp_path, bucket.objects({"a.gz": compressed}), bucket.store)

    feeder.start()
    reader = Reader(feeder.fifo_path)

    assert reader.join() and bytes(reader.data) == compressed


# --- readers that leave, or never come --------------------------------------------------------


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


def test_no_reader_at_all_and_stop_ends_promptly(tmp_path: Path) -> None:
    bucket = folder_bucket(tmp_path / "root")
    feeder = feeder_for(tmp_path, bucket.objects({"a": b"never read"}), bucket.store)

    feeder.start()
    time.sleep(0.3)  # the feeder is now waiting for a reader
    assert not feeder.wait(0)
    started = time.monotonic()
    feeder.stop()

    assert feeder.wait(0), "stop() must end the feeder"
    assert time.monotonic() - started < PROMPT
    assert feeder.error() is None and feeder.bytes_written() == 0
    assert not feeder.reader_opened


def test_reader_that_stops_reading_without_closing_and_stop(tmp_path: Path) -> None:
    bucket = folder_bucket(tmp_path / "root")
    feeder = feeder_for(tmp_path, bucket.objects({"a": os.urandom(4 * MB)}), bucket.store)
    feeder.start()
    # A reader that opens the pipe and then hangs (a stuck container): the pipe fills up.
    fd = os.open(feeder.fifo_path, os.O_RDONLY)
    try:
        deadline = time.monotonic() + WAIT
        while feeder.bytes_written() == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        assert not feeder.wait(0) and 0 < feeder.bytes_written() < 4 * MB

        started = time.monotonic()
        feeder.stop()

        assert feeder.wait(0) and time.monotonic() - started < PROMPT
        assert feeder.error() is None
    finally:
        os.close(fd)


def test_stop_before_start_and_twice(tmp_path: Path) -> None:
    bucket = folder_bucket(tmp_path / "root")
    feeder = feeder_for(tmp_path, bucket.objects({"a": b"x"}), bucket.store)

    feeder.stop()
    feeder.stop()

    assert feeder.wait(0) and feeder.error() is None


def test_start_twice_is_refused(tmp_path: Path) -> None:
    feeder = feeder_for(tmp_path, [], folder_bucket(tmp_path / "root").store)
    feeder.start()
    try:
        with pytest.raises(RuntimeError):
            feeder.start()
    finally:
        feeder.stop()


# --- errors ------------------------------------------------------------------------------------


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


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"plain text, not gzip", "not valid gzip data"),
        (gz(b"x" * 100_000)[:-20], "ends in the middle of a gzip stream"),  # truncated
        (gz(b"ok") + b"garbage after the member", "not valid gzip data"),
        (gz(b"y" * 1000)[:-8] + b"\0\0\0\0" + gz(b"y" * 1000)[-4:], "not valid gzip data"),  # CRC
    ],
    ids=["not-gzip", "truncated", "trailing-garbage", "bad-crc"],
)
def test_corrupt_gzip_fails_with_client_error(tmp_path: Path, body: bytes, problem: str) -> None:
    bucket = folder_bucket(tmp_path / "root")
    feeder = feeder_for(tmp_path, bucket.objects({"bad.gz": body}), bucket.store, gzip=True)

    feeder.start()
    reader = Reader(feeder.fifo_path)

    assert reader.join() and feeder.wait(WAIT)
    failure = feeder.error()
    assert failure is not None
    assert failure.reason.startswith(
        "ClientError: Cannot decompress s3://bucket/bad.gz of input 'data' (S3CompressionType "
        "Gzip): it is not valid gzip data"
    )
    assert problem in failure.reason


def test_missing_fifo_is_an_internal_error(tmp_path: Path) -> None:
    bucket = folder_bucket(tmp_path / "root")
    feeder = PipeFeeder(tmp_path / "nowhere" / "data_0", [], bucket.store, False, "data")

    feeder.start()

    assert feeder.wait(WAIT)
    failure = feeder.error()
    assert failure is not None and failure.reason.startswith("InternalServerError: ")
    assert "'data'" in failure.reason


# --- memory ------------------------------------------------------------------------------------


def _write_file(path: Path, chunks: int, make: Callable[[int], bytes]) -> hashlib._Hash:
    digest = hashlib.sha256()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as out:
        for index in range(chunks):
            chunk = make(index)
            digest.update(chunk)
            out.write(chunk)
    return digest


def _peak_while_streaming(feeder: PipeFeeder) -> tuple[Reader, int]:
    tracemalloc.start()
    try:
        feeder.start()
        reader = Reader(feeder.fifo_path, keep=False)
        assert reader.join(60) and feeder.wait(60)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return reader, peak


def test_large_object_streams_with_bounded_memory(tmp_path: Path) -> None:
    bucket = folder_bucket(tmp_path / "root")
    digest = _write_file(tmp_path / "root" / "bucket" / "large.bin", 50, lambda _: os.urandom(MB))
    obj = bucket.store.head_object("bucket", "large.bin")
    assert obj is not None and obj.size == 50 * MB
    feeder = feeder_for(tmp_path, [obj], bucket.store)

    reader, peak = _peak_while_streaming(feeder)

    assert reader.count == 50 * MB and reader.digest.digest() == digest.digest()
    assert feeder.error() is None and feeder.bytes_written() == 50 * MB
    assert peak < 8 * MB, f"peak {peak} bytes: the object must not be held in memory"


def test_gzip_expanding_far_beyond_its_size_streams_with_bounded_memory(tmp_path: Path) -> None:
    """50 MB of zeros compress to ~50 KB: the output must still come out in bounded pieces."""
    bucket = folder_bucket(tmp_path / "root")
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    compressed = b"".join(compressor.compress(bytes(MB)) for _ in range(50)) + compressor.flush()
    bucket.put("zeros.gz", compressed)
    expected = hashlib.sha256()
    for _ in range(50):
        expected.update(bytes(MB))
    obj = bucket.store.head_object("bucket", "zeros.gz")
    assert obj is not None and obj.size < MB
    feeder = feeder_for(tmp_path, [obj], bucket.store, gzip=True)

    reader, peak = _peak_while_streaming(feeder)

    assert reader.count == 50 * MB and reader.digest.digest() == expected.digest()
    assert feeder.error() is None
    assert peak < 8 * MB, f"peak {peak} bytes: decompressed output must not pile up"


# --- make_fifo ---------------------------------------------------------------------------------


def test_make_fifo_is_usable_by_any_user(tmp_path: Path) -> None:
    previous = os.umask(0o077)
    try:
        make_fifo(tmp_path / "a" / "b" / "data_0")
    finally:
        os.umask(previous)

    mode = os.lstat(tmp_path / "a" / "b" / "data_0").st_mode
    assert stat.S_ISFIFO(mode) and stat.S_IMODE(mode) == 0o666


def test_make_fifo_reuses_a_fifo_and_refuses_other_files(tmp_path: Path) -> None:
    make_fifo(tmp_path / "data_0")
    make_fifo(tmp_path / "data_0")
    (tmp_path / "file").write_text("x")

    with pytest.raises(FileExistsError):
        make_fifo(tmp_path / "file")
    assert stat.S_ISFIFO(os.lstat(tmp_path / "data_0").st_mode)
