"""Continuous outputs: files reach S3 while the job runs, complete, in their final version, and
nothing but regular files below the output folder is ever read.

The host side only (a real S3 endpoint over HTTP, real inotify); the Docker end-to-end test lives
with the job tests.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from pathlib import Path

import pytest
from helpers.continuous import LOCAL_PATH, eventually, output, target, uploading
from s3_endpoint import S3Helper

from localproc.storage import ObjectStore, open_store
from localproc.transfer.continuous import ContinuousTarget


def s3_store(s3: S3Helper) -> ObjectStore:
    return open_store(None, s3.endpoint_url, s3.region)


def body(s3: S3Helper, bucket: str, key: str) -> bytes | None:
    try:
        response = s3.client.get_object(Bucket=bucket, Key=key)
    except s3.client.exceptions.NoSuchKey:
        return None
    data: bytes = response["Body"].read()
    return data


def keys(s3: S3Helper, bucket: str, prefix: str = "") -> set[str]:
    found: set[str] = set()
    for page in s3.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        found.update(item["Key"] for item in page.get("Contents", []))
    return found


class Warnings:
    def __init__(self) -> None:
        self.messages: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, message: str) -> None:
        with self._lock:
            self.messages.append(message)


def test_a_closed_file_reaches_s3_while_the_job_runs(s3: S3Helper, tmp_path: Path) -> None:
    bucket = s3.make_bucket()
    out = target(tmp_path, bucket, "run/out")
    uploaded: list[str] = []
    with uploading([out], s3_store(s3), on_upload=lambda task: uploaded.append(task.key)) as (
        uploader,
        reports,
    ):
        with open(out.folder / "progress.txt", "wb") as stream:
            stream.write(b"epoch 1 done\n")
        assert eventually(lambda: body(s3, bucket, "run/out/progress.txt") == b"epoch 1 done\n")
        running_report = list(uploaded)
        report = uploader.finish()
    assert running_report == ["run/out/progress.txt"]
    assert report.failures == []
    assert [(task.key, task.host, task.size) for task in report.uploaded] == [
        ("run/out/progress.txt", "algo-1", 13)
    ]
    assert report.bytes == 13
    assert reports[0] is report  # finish() twice returns the same report


def test_a_file_rewritten_three_times_ends_with_its_final_content(
    s3: S3Helper, tmp_path: Path
) -> None:
    bucket = s3.make_bucket()
    out = target(tmp_path, bucket, "out/")
    path = out.folder / "model.json"
    with uploading([out], s3_store(s3)) as (_, reports):
        for version in (b'{"v": 1}', b'{"version": 2, "longer": true}', b'{"v":3}'):
            path.write_bytes(version)
            assert eventually(lambda v=version: body(s3, bucket, "out/model.json") == v)
    assert body(s3, bucket, "out/model.json") == b'{"v":3}'
    assert reports[0].failures == []
    assert [task.key for task in reports[0].uploaded] == ["out/model.json"] * 3


def test_rewrites_faster_than_uploads_still_end_with_the_last_one(
    s3: S3Helper, tmp_path: Path
) -> None:
    bucket = s3.make_bucket()
    out = target(tmp_path, bucket, "out")
    path = out.folder / "state.txt"
    with uploading([out], s3_store(s3)):
        for version in range(20):
            path.write_text(f"version {version}\n" * (version + 1))
        assert eventually(lambda: body(s3, bucket, "out/state.txt") == path.read_bytes())
    assert body(s3, bucket, "out/state.txt") == b"version 19\n" * 20


def test_a_large_file_written_slowly_is_never_left_partial(s3: S3Helper, tmp_path: Path) -> None:
    """30 MB written in 1 MB pieces over a few seconds, with one pause longer than the settle
    time: a partial version may be uploaded meanwhile, but only ever a consistent prefix, and the
    final object is the whole file."""
    bucket = s3.make_bucket()
    out = target(tmp_path, bucket, "ckpt")
    chunks = [os.urandom(1024 * 1024) for _ in range(30)]
    content = b"".join(chunks)
    seen: list[bytes] = []
    stop = threading.Event()

    def watch_s3() -> None:
        last_etag = None
        while not stop.is_set():
            try:
                head = s3.client.head_object(Bucket=bucket, Key="ckpt/model.bin")
            except s3.client.exceptions.ClientError:
                time.sleep(0.05)
                continue
            if head["ETag"] != last_etag:
                last_etag = head["ETag"]
                data = body(s3, bucket, "ckpt/model.bin")
                if data is not None:
                    seen.append(data)
            time.sleep(0.05)

    monitor = threading.Thread(target=watch_s3)
    monitor.start()
    try:
        with uploading([out], s3_store(s3)) as (_, reports):
            with open(out.folder / "model.bin", "wb") as stream:
                for number, chunk in enumerate(chunks):
                    stream.write(chunk)
                    stream.flush()
                    # One long pause mid-file: the file looks settled and is uploaded partially.
                    time.sleep(2.0 if number == 9 else 0.1)
            assert eventually(lambda: seen and seen[-1] == content, timeout=20)
    finally:
        stop.set()
        monitor.join()
    assert body(s3, bucket, "ckpt/model.bin") == content
    assert reports[0].failures == []
    # The pause made a partial upload, which the close replaced: more than one version went up.
    assert len(reports[0].uploaded) >= 2
    for version in seen:
        assert content.startswith(version), "an upload mixed two states of the file"


def test_sub_folders_created_after_start_are_watched(s3: S3Helper, tmp_path: Path) -> None:
    bucket = s3.make_bucket()
    out = target(tmp_path, bucket, "out")
    with uploading([out], s3_store(s3)) as (_, reports):
        deep = out.folder / "a" / "b" / "c"
        deep.mkdir(parents=True)
        (deep / "deep.txt").write_text("deep")
        # Written right after mkdir, possibly before the new folder's watch exists.
        quick = out.folder / "quick"
        quick.mkdir()
        (quick / "first.txt").write_text("first")
        assert eventually(lambda: body(s3, bucket, "out/a/b/c/deep.txt") == b"deep")
        assert eventually(lambda: body(s3, bucket, "out/quick/first.txt") == b"first")
        # And the folders made then go on being watched.
        (deep / "later.txt").write_text("later")
        assert eventually(lambda: body(s3, bucket, "out/a/b/c/later.txt") == b"later")
    assert keys(s3, bucket) == {"out/a/b/c/deep.txt", "out/a/b/c/later.txt", "out/quick/first.txt"}
    assert reports[0].failures == []


def test_symlinks_and_fifos_are_never_read(s3: S3Helper, tmp_path: Path) -> None:
    bucket = s3.make_bucket()
    out = target(tmp_path, bucket, "out")
    warnings = Warnings()
    with uploading([out], s3_store(s3), warn=warnings) as (_, reports):
        (out.folder / "passwd").symlink_to("/etc/passwd")
        (out.folder / "etc").symlink_to("/etc", target_is_directory=True)
        os.mkfifo(out.folder / "pipe")
        (out.folder / "nested").mkdir()
        (out.folder / "nested" / "hosts").symlink_to("/etc/hosts")
        (out.folder / "ok.txt").write_text("fine")
        assert eventually(lambda: body(s3, bucket, "out/ok.txt") == b"fine")
        assert eventually(lambda: len(warnings.messages) >= 4)
    assert keys(s3, bucket) == {"out/ok.txt"}
    assert sorted(warnings.messages) == [
        f"algo-1: {LOCAL_PATH}/etc is a symbolic link; not uploaded",
        f"algo-1: {LOCAL_PATH}/nested/hosts is a symbolic link; not uploaded",
        f"algo-1: {LOCAL_PATH}/passwd is a symbolic link; not uploaded",
        f"algo-1: {LOCAL_PATH}/pipe is a FIFO; not uploaded",
    ]
    assert sorted(reports[0].skipped) == [
        f"algo-1:{LOCAL_PATH}/etc",
        f"algo-1:{LOCAL_PATH}/nested/hosts",
        f"algo-1:{LOCAL_PATH}/passwd",
        f"algo-1:{LOCAL_PATH}/pipe",
    ]


def test_a_symlinked_folder_swapped_in_is_not_followed(s3: S3Helper, tmp_path: Path) -> None:
    """A container that replaces a sub-folder by a symlink to a host folder after writing into it
    must not get the host folder's file of the same name uploaded."""
    bucket = s3.make_bucket()
    out = target(tmp_path, bucket, "out")
    host_secrets = tmp_path / "host-secrets"
    host_secrets.mkdir()
    (host_secrets / "data.txt").write_text("host secret")
    with uploading([out], s3_store(s3), settle_seconds=1.0) as (_, reports):
        sub = out.folder / "sub"
        sub.mkdir()
        with open(sub / "data.txt", "w") as stream:
            stream.write("container data")
            # Swap before the settle time lets the (still open) file be uploaded.
            os.rename(sub, out.folder / "moved")
            sub.symlink_to(host_secrets, target_is_directory=True)
    assert body(s3, bucket, "out/sub/data.txt") is None
    assert body(s3, bucket, "out/moved/data.txt") == b"container data"
    assert reports[0].failures == []


def test_two_thousand_files_on_two_instances_all_arrive(s3: S3Helper, tmp_path: Path) -> None:
    bucket = s3.make_bucket()
    targets = [target(tmp_path, bucket, "many", host) for host in ("algo-1", "algo-2")]
    expected: dict[str, bytes] = {}
    with uploading(targets, s3_store(s3)) as (_, reports):
        for number in range(2000):
            host_target = targets[number % 2]
            relative = f"{host_target.host}/part-{number % 7}/file-{number:04}.txt"
            path = host_target.folder / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            data = f"{relative}\n".encode() * (number % 5 + 1)
            path.write_bytes(data)
            expected[f"many/{relative}"] = data
    report = reports[0]
    assert report.failures == []
    assert report.collisions == []
    assert keys(s3, bucket) == set(expected)
    # Each file once: written in one go, so no version needs a second upload.
    assert sorted(task.key for task in report.uploaded) == sorted(expected)
    for key in sorted(expected)[::97]:
        assert body(s3, bucket, key) == expected[key]


def test_deletions_are_not_propagated(s3: S3Helper, tmp_path: Path) -> None:
    bucket = s3.make_bucket()
    out = target(tmp_path, bucket, "out")
    with uploading([out], s3_store(s3)) as (_, reports):
        (out.folder / "temp.txt").write_text("short-lived")
        assert eventually(lambda: body(s3, bucket, "out/temp.txt") == b"short-lived")
        (out.folder / "temp.txt").unlink()
        (out.folder / "kept.txt").write_text("kept")
    assert body(s3, bucket, "out/temp.txt") == b"short-lived"
    assert body(s3, bucket, "out/kept.txt") == b"kept"
    assert reports[0].failures == []


def test_the_kms_key_is_applied_to_every_object(s3: S3Helper, tmp_path: Path) -> None:
    bucket = s3.make_bucket()
    out = target(tmp_path, bucket, "enc")
    key_id = "arn:aws:kms:us-east-1:000000000000:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    with uploading([out], s3_store(s3), kms_key_id=key_id) as (_, reports):
        (out.folder / "during.txt").write_text("while running")
        assert eventually(lambda: body(s3, bucket, "enc/during.txt") is not None)
        # Still open when the job ends: uploaded by the final pass.
        unfinished = open(out.folder / "at-the-end.txt", "w")  # noqa: SIM115 - closed below
        unfinished.write("last words")
        unfinished.flush()
    unfinished.close()
    assert reports[0].failures == []
    assert keys(s3, bucket) == {"enc/during.txt", "enc/at-the-end.txt"}
    for key in keys(s3, bucket):
        head = s3.client.head_object(Bucket=bucket, Key=key)
        assert head["ServerSideEncryption"] == "aws:kms"
        assert head["SSEKMSKeyId"] == key_id


def test_finish_uploads_what_was_still_settling(s3: S3Helper, tmp_path: Path) -> None:
    """A file still open (or not yet settled) when the containers end is uploaded by the final
    pass, whatever the settle time."""
    bucket = s3.make_bucket()
    out = target(tmp_path, bucket, "out")
    with uploading([out], s3_store(s3), settle_seconds=60.0) as (_, reports):
        stream = open(out.folder / "log.txt", "w")  # noqa: SIM115 - closed after finish
        stream.write("line 1\n")
        stream.flush()
        time.sleep(0.3)
        assert body(s3, bucket, "out/log.txt") is None
    stream.close()
    assert body(s3, bucket, "out/log.txt") == b"line 1\n"
    assert [task.key for task in reports[0].uploaded] == ["out/log.txt"]


def test_the_same_key_from_two_instances_keeps_the_last_hosts_copy(
    s3: S3Helper, tmp_path: Path
) -> None:
    bucket = s3.make_bucket()
    targets = [target(tmp_path, bucket, "shared", host) for host in ("algo-1", "algo-2")]
    with uploading(targets, s3_store(s3)) as (_, reports):
        (targets[1].folder / "summary.txt").write_text("from algo-2")
        time.sleep(0.3)
        (targets[0].folder / "summary.txt").write_text("from algo-1, written last")
        assert eventually(
            lambda: body(s3, bucket, "shared/summary.txt") == b"from algo-1, written last"
        )
    assert body(s3, bucket, "shared/summary.txt") == b"from algo-2"
    assert reports[0].collisions == [
        f"s3://{bucket}/shared/summary.txt written by algo-1 and algo-2; algo-2's copy is kept"
    ]


def test_polling_is_used_when_inotify_is_off(s3: S3Helper, tmp_path: Path) -> None:
    bucket = s3.make_bucket()
    out = target(tmp_path, bucket, "out")
    with uploading([out], s3_store(s3), use_inotify=False) as (_, reports):
        (out.folder / "sub").mkdir()
        (out.folder / "sub" / "polled.txt").write_text("polled")
        assert eventually(lambda: body(s3, bucket, "out/sub/polled.txt") == b"polled")
    assert reports[0].failures == []


def test_a_full_inotify_watch_table_falls_back_to_polling(
    s3: S3Helper, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from watchdog.observers.inotify import InotifyObserver

    def no_watches_left(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "inotify watch limit reached")

    monkeypatch.setattr(InotifyObserver, "schedule", no_watches_left)
    bucket = s3.make_bucket()
    out = target(tmp_path, bucket, "out")
    warnings = Warnings()
    with uploading([out], s3_store(s3), warn=warnings):
        (out.folder / "still.txt").write_text("arrives")
        assert eventually(lambda: body(s3, bucket, "out/still.txt") == b"arrives")
    assert len(warnings.messages) == 1
    assert "max_user_watches" in warnings.messages[0]
    assert "polling" in warnings.messages[0]


def test_a_failed_upload_is_reported_only_if_the_final_content_is_missing(
    s3: S3Helper, tmp_path: Path
) -> None:
    """Uploads into a bucket that does not exist fail; the report names each object once."""
    out = ContinuousTarget(
        host="algo-1",
        output=output("localproc-test-no-such-bucket", "out"),
        folder=tmp_path / "out",
    )
    out.folder.mkdir()
    with uploading([out], s3_store(s3)) as (_, reports):
        (out.folder / "a.txt").write_text("a")
        time.sleep(1.0)
    assert reports[0].uploaded == []
    assert len(reports[0].failures) == 1
    assert reports[0].failures[0].startswith("s3://localproc-test-no-such-bucket/out/a.txt: ")
    assert "NoSuchBucket" in reports[0].failures[0]


def test_idle_watching_costs_almost_no_cpu(s3: S3Helper, tmp_path: Path) -> None:
    bucket = s3.make_bucket()
    targets = [target(tmp_path, bucket, "idle", host) for host in ("algo-1", "algo-2")]
    for number in range(100):
        (targets[0].folder / f"existing-{number}.txt").write_text("x")
    with uploading(targets, s3_store(s3)):
        # Only the precondition: files already there are uploaded (the first sweep finds them).
        assert eventually(lambda: len(keys(s3, bucket)) == 100, timeout=60)
        time.sleep(1.0)  # let the uploads' threads wind down
        cpu_before = time.process_time()
        time.sleep(2.0)
        idle_cpu = time.process_time() - cpu_before
    assert idle_cpu < 0.1, f"{idle_cpu:.3f} s of CPU in 2 s of idle watching"
