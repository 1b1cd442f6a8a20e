"""Pipe mode feeding: a real FIFO on this host, read by a thread the way a container reads it, fed
from the folder store (what both stores share: helpers/pipe_cases.py; from S3:
tests/integration/test_pipe_s3.py). No Docker needed."""

from __future__ import annotations

import hashlib
import os
import stat
import time
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

# The tests both stores share, collected here too.
from helpers.pipe_cases import (  # noqa: F401
    MB,
    PROMPT,
    WAIT,
    Bucket,
    Reader,
    feeder_for,
    folder_bucket,
    gz,
    test_gzip_objects_are_decompressed,
    test_object_deleted_before_streaming_fails_with_client_error,
    test_object_replaced_before_streaming_fails,
    test_objects_stream_in_the_given_order,
    test_reader_that_closes_early_ends_the_feeder_without_error,
)

from localproc.runtime.docker_run import make_fifo
from localproc.transfer.pipe import PipeFeeder

# Every wait below is bounded; this only catches a hang the waits would not.
pytestmark = pytest.mark.timeout(120)


@pytest.fixture(params=["folder"])
def bucket(tmp_path: Path) -> Bucket:
    """A bucket in a folder store (the S3 side of these shared tests:
    tests/integration/test_pipe_s3.py)."""
    return folder_bucket(tmp_path / "root")


# --- streaming -----------------------------------------------------------------------------------


def test_no_objects_gives_an_empty_stream(tmp_path: Path) -> None:
    feeder = feeder_for(tmp_path, [], folder_bucket(tmp_path / "root").store)

    feeder.start()
    reader = Reader(feeder.fifo_path)

    assert reader.join() and reader.saw_eof and reader.data == b""
    assert feeder.wait(WAIT) and feeder.error() is None


def test_without_gzip_compressed_objects_pass_through(tmp_path: Path) -> None:
    bucket = folder_bucket(tmp_path / "root")
    compressed = gz(b"stays compressed")
    feeder = feeder_for(tmp_path, bucket.objects({"a.gz": compressed}), bucket.store)

    feeder.start()
    reader = Reader(feeder.fifo_path)

    assert reader.join() and bytes(reader.data) == compressed


# --- readers that leave, or never come --------------------------------------------------------


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
