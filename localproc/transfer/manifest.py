"""ManifestFile inputs: the S3Uri names a manifest that lists the objects to stage or stream.

SageMaker's manifest format is a JSON array whose first element is `{"prefix": "s3://b/p/"}`
followed by object keys relative to that prefix:

    [{"prefix": "s3://bucket/data/"}, "2024/a.csv", "2024/b.csv"]

Each entry's object is the prefix and the entry joined as strings (`s3://bucket/data/2024/a.csv`),
and it lands below the input's LocalPath at the entry itself (`2024/a.csv`), so an entry may
contain '/'. The objects keep the manifest's order, which is what sharding and Pipe mode use.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from localproc.errors import JobFailure, client_error
from localproc.storage import ObjectInfo, ObjectStore, StoreError, parse_s3_uri

# Manifests list keys, so even a million entries stay far below this; a bigger object is almost
# certainly the wrong S3Uri, and reading it would only waste memory.
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
# HEAD requests are small and latency-bound: many in flight make long manifests quick.
HEAD_WORKERS = 16
# A FailureReason is read by people (and SageMaker cuts it at 1024 characters): name a few.
_MAX_NAMED_MISSING = 10
_READ_CHUNK = 1024 * 1024

_FORMAT_HINT = (
    'A manifest is a JSON array: [{"prefix": "s3://bucket/path/"}, "relative/key-1", '
    '"relative/key-2", ...].'
)


@dataclass(frozen=True)
class Manifest:
    """A manifest that has been read and whose entries all exist.

    `prefix_uri` is the manifest's prefix as written; `bucket` and `prefix` are its parts (the
    prefix may be empty). `objects` are the listed objects in manifest order, duplicates kept,
    each as a HEAD reported it (size and ETag).
    """

    uri: str
    prefix_uri: str
    bucket: str
    prefix: str
    objects: list[ObjectInfo]

    def relative_path(self, obj: ObjectInfo) -> str:
        """Where `obj` lands below LocalPath: its manifest entry, i.e. its key minus the prefix.

        Not yet checked for escaping LocalPath (`..`, a leading '/'): planning does that, as for
        S3Prefix inputs.
        """
        if obj.bucket != self.bucket or not obj.key.startswith(self.prefix):
            raise ValueError(f"s3://{obj.bucket}/{obj.key} is not under {self.prefix_uri}")
        return obj.key[len(self.prefix) :]


def read_manifest(store: ObjectStore, s3_uri: str, input_name: str) -> Manifest:
    """Read the manifest at `s3_uri` and HEAD every object it lists (in parallel).

    Fails the job (`JobFailure` with a `ClientError: ...` reason naming the input) when the
    manifest is missing, too large, malformed, or lists objects that do not exist, or when the
    store refuses a request. An unusable store raises StoreUnreachable, as everywhere else.
    """
    what = f"Manifest {s3_uri} of input '{input_name}'"
    try:
        bucket, key = parse_s3_uri(s3_uri)
    except ValueError as err:
        raise client_error(f"{what} is not a valid S3 URI: {err}") from err
    raw = _read(store, bucket, key, what)
    prefix_uri, entries = _parse(raw, what)
    prefix_bucket, prefix = parse_s3_uri(prefix_uri)  # _parse checked that it parses
    keys = [prefix + entry for entry in entries]
    found = _head_all(store, prefix_bucket, keys, what)
    missing = [k for k in dict.fromkeys(keys) if found[k] is None]
    if missing:
        named = ", ".join(f"s3://{prefix_bucket}/{k}" for k in missing[:_MAX_NAMED_MISSING])
        more = len(missing) - _MAX_NAMED_MISSING
        if more > 0:
            named += f", and {more} more"
        raise client_error(f"{what} lists {len(missing)} missing object(s): {named}")
    objects = [found[k] for k in keys]
    return Manifest(
        uri=s3_uri,
        prefix_uri=prefix_uri,
        bucket=prefix_bucket,
        prefix=prefix,
        objects=[obj for obj in objects if obj is not None],
    )


def _read(store: ObjectStore, bucket: str, key: str, what: str) -> bytes:
    try:
        info = store.head_object(bucket, key) if key else None
        if info is None:
            raise client_error(
                f"{what} does not exist. For S3DataType ManifestFile the S3Uri must name the "
                "manifest object itself."
            )
        if info.size > MAX_MANIFEST_BYTES:
            raise client_error(
                f"{what} is {info.size} bytes; manifests larger than "
                f"{MAX_MANIFEST_BYTES // (1024 * 1024)} MiB are not supported. Check that the "
                "S3Uri names the manifest, not a data object."
            )
        content = bytearray()
        # Read in chunks against the limit rather than trusting the HEAD's size: the object may
        # have been replaced in between (the ETag condition catches that on S3, not everywhere).
        with store.open_object(info) as stream:
            while chunk := stream.read(_READ_CHUNK):
                content += chunk
                if len(content) > MAX_MANIFEST_BYTES:
                    raise client_error(
                        f"{what} is larger than {MAX_MANIFEST_BYTES // (1024 * 1024)} MiB; "
                        "such manifests are not supported."
                    )
        return bytes(content)
    except StoreError as err:
        raise client_error(f"Cannot read {what[0].lower()}{what[1:]}: {err}") from err


def _parse(raw: bytes, what: str) -> tuple[str, list[str]]:
    """The manifest's prefix URI and its entries, or a ClientError saying what is wrong."""

    def malformed(problem: str) -> JobFailure:
        return client_error(f"{what} is malformed: {problem}. {_FORMAT_HINT}")

    try:
        # utf-8-sig: editors on some systems start UTF-8 files with a byte order mark.
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise malformed(f"it is not UTF-8 text ({err})") from err
    try:
        document: Any = json.loads(text)
    except json.JSONDecodeError as err:
        raise malformed(f"it is not valid JSON ({err})") from err
    if not isinstance(document, list):
        raise malformed(f"it is a JSON {_json_kind(document)}, not an array")
    if not document:
        raise malformed("it is an empty array")
    head = document[0]
    if not isinstance(head, dict):
        raise malformed(
            f'its first element is a JSON {_json_kind(head)}, not an object {{"prefix": ...}}'
        )
    if "prefix" not in head:
        raise malformed('its first element has no "prefix" member')
    prefix_uri = head["prefix"]
    if not isinstance(prefix_uri, str):
        raise malformed(f'its "prefix" is a JSON {_json_kind(prefix_uri)}, not a string')
    if not prefix_uri.lower().startswith("s3://"):
        raise malformed(f'its "prefix" {prefix_uri!r} is not an s3:// URI')
    try:
        parse_s3_uri(prefix_uri)
    except ValueError as err:
        raise malformed(f'its "prefix" {prefix_uri!r} is not a valid S3 URI ({err})') from err
    entries = document[1:]
    for index, entry in enumerate(entries, start=1):
        if not isinstance(entry, str):
            raise malformed(
                f"element [{index}] is a JSON {_json_kind(entry)}, not a string (each entry "
                "after the prefix is an object key relative to the prefix)"
            )
        if not entry:
            raise malformed(f"element [{index}] is an empty string, which names no object")
    if not entries:
        raise malformed("it lists no objects after the prefix")
    return prefix_uri, entries


def _head_all(
    store: ObjectStore, bucket: str, keys: Sequence[str], what: str
) -> dict[str, ObjectInfo | None]:
    """HEAD each distinct key once, HEAD_WORKERS at a time."""
    unique = list(dict.fromkeys(keys))
    found: dict[str, ObjectInfo | None] = {}
    pool = ThreadPoolExecutor(max_workers=HEAD_WORKERS, thread_name_prefix="manifest-head")
    try:
        futures: list[tuple[str, Future[ObjectInfo | None]]] = [
            (key, pool.submit(store.head_object, bucket, key)) for key in unique
        ]
        for key, future in futures:
            try:
                found[key] = future.result()
            except StoreError as err:
                raise client_error(
                    f"Cannot check the objects listed in {what[0].lower()}{what[1:]}: {err}"
                ) from err
    finally:
        # After a failure the remaining HEADs are pointless: drop those not yet started.
        pool.shutdown(wait=True, cancel_futures=True)
    return found


def _json_kind(value: object) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"
