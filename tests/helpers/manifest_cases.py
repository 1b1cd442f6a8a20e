"""Reading SageMaker's manifest format, what both object stores must give the same answers to,
tested once against each: tests/unit/test_manifest.py against the folder store,
tests/integration/test_manifest_s3.py against S3 through a real endpoint. Each defines the
`buckets` fixture these ask for."""

from __future__ import annotations

import json
import random
from collections.abc import Callable

import pytest

from localproc.errors import JobFailure
from localproc.storage import ObjectStore
from localproc.transfer.manifest import Manifest, read_manifest


class Buckets:
    """Two buckets in one store (data and manifests may live apart), whichever kind it is."""

    def __init__(
        self, store: ObjectStore, names: tuple[str, str], put: Callable[[str, str, bytes], None]
    ) -> None:
        self.store = store
        self.data, self.other = names
        self.put = put

    def put_manifest(self, document: object, key: str = "manifests/m.json") -> str:
        body = document if isinstance(document, bytes) else json.dumps(document).encode()
        self.put(self.data, key, body)
        return f"s3://{self.data}/{key}"


def failure_of(buckets: Buckets, uri: str, input_name: str = "data") -> str:
    with pytest.raises(JobFailure) as raised:
        read_manifest(buckets.store, uri, input_name)
    return raised.value.reason


def test_valid_manifest_in_manifest_order(buckets: Buckets) -> None:
    entries = ["2024/b.csv", "a.csv", "2023/z/c.csv"]  # not in key order
    for entry in entries:
        buckets.put(buckets.data, f"data/{entry}", entry.encode())
    buckets.put(buckets.data, "data/not-listed.csv", b"x")
    uri = buckets.put_manifest([{"prefix": f"s3://{buckets.data}/data/"}, *entries])

    manifest = read_manifest(buckets.store, uri, "data")

    assert isinstance(manifest, Manifest)
    assert manifest.uri == uri
    assert manifest.prefix_uri == f"s3://{buckets.data}/data/"
    assert (manifest.bucket, manifest.prefix) == (buckets.data, "data/")
    assert [obj.key for obj in manifest.objects] == [f"data/{entry}" for entry in entries]
    assert [obj.size for obj in manifest.objects] == [len(entry) for entry in entries]
    assert all(obj.bucket == buckets.data and obj.etag for obj in manifest.objects)
    assert [manifest.relative_path(obj) for obj in manifest.objects] == entries


def test_order_preserved_over_many_parallel_heads(buckets: Buckets) -> None:
    entries = [f"part-{i:03d}" for i in range(60)]
    for entry in entries:
        buckets.put(buckets.data, f"p/{entry}", b"x")
    random.Random(7).shuffle(entries)
    uri = buckets.put_manifest([{"prefix": f"s3://{buckets.data}/p/"}, *entries])

    manifest = read_manifest(buckets.store, uri, "data")

    assert [manifest.relative_path(obj) for obj in manifest.objects] == entries


def test_prefix_in_another_bucket_and_joined_as_a_string(buckets: Buckets) -> None:
    """The prefix need not end at a '/': SageMaker joins prefix and entry as strings."""
    buckets.put(buckets.other, "runs/part-1.csv", b"1")
    buckets.put(buckets.other, "runs/part-2.csv", b"22")
    uri = buckets.put_manifest([{"prefix": f"s3://{buckets.other}/runs/part-"}, "2.csv", "1.csv"])

    manifest = read_manifest(buckets.store, uri, "data")

    assert manifest.bucket == buckets.other
    assert [obj.key for obj in manifest.objects] == ["runs/part-2.csv", "runs/part-1.csv"]
    assert [manifest.relative_path(obj) for obj in manifest.objects] == ["2.csv", "1.csv"]


def test_prefix_naming_only_a_bucket(buckets: Buckets) -> None:
    buckets.put(buckets.other, "top.csv", b"t")
    uri = buckets.put_manifest([{"prefix": f"s3://{buckets.other}"}, "top.csv"])

    manifest = read_manifest(buckets.store, uri, "data")

    assert manifest.prefix == "" and [obj.key for obj in manifest.objects] == ["top.csv"]


def test_duplicate_entries_are_kept(buckets: Buckets) -> None:
    buckets.put(buckets.data, "d/a", b"a")
    buckets.put(buckets.data, "d/b", b"b")
    uri = buckets.put_manifest([{"prefix": f"s3://{buckets.data}/d/"}, "a", "b", "a"])

    manifest = read_manifest(buckets.store, uri, "data")

    assert [obj.key for obj in manifest.objects] == ["d/a", "d/b", "d/a"]


def test_byte_order_mark_and_extra_prefix_members(buckets: Buckets) -> None:
    buckets.put(buckets.data, "d/a", b"a")
    text = json.dumps([{"prefix": f"s3://{buckets.data}/d/", "comment": "ignored"}, "a"])
    uri = buckets.put_manifest(b"\xef\xbb\xbf" + text.encode())

    assert [obj.key for obj in read_manifest(buckets.store, uri, "data").objects] == ["d/a"]


MALFORMED: list[tuple[str, object, str]] = [
    ("not JSON", b"[{'prefix': 's3://b/'}, 'a']", "it is not valid JSON"),
    ("truncated JSON", b'[{"prefix": "s3://b/"}, "a"', "it is not valid JSON"),
    ("not UTF-8", b'[{"prefix": "s3://b/"}, "\xff"]', "it is not UTF-8 text"),
    ("an object", {"prefix": "s3://b/", "keys": ["a"]}, "it is a JSON object, not an array"),
    ("a string", "s3://b/a", "it is a JSON string, not an array"),
    ("empty array", [], "it is an empty array"),
    ("prefix as a string", ["s3://b/", "a"], "its first element is a JSON string, not an object"),
    ("no prefix member", [{"Prefix": "s3://b/"}, "a"], 'its first element has no "prefix" member'),
    ("prefix a number", [{"prefix": 3}, "a"], 'its "prefix" is a JSON number, not a string'),
    ("prefix null", [{"prefix": None}, "a"], 'its "prefix" is a JSON null, not a string'),
    ("prefix https", [{"prefix": "https://b.s3.amazonaws.com/p/"}, "a"], "is not an s3:// URI"),
    ("prefix a path", [{"prefix": "/data/"}, "a"], "is not an s3:// URI"),
    ("prefix no bucket", [{"prefix": "s3:///data/"}, "a"], "is not a valid S3 URI"),
    ("entry a number", [{"prefix": "s3://b/"}, "a", 7], "element [2] is a JSON number"),
    ("entry null", [{"prefix": "s3://b/"}, None], "element [1] is a JSON null"),
    ("entry an object", [{"prefix": "s3://b/"}, {"key": "a"}], "element [1] is a JSON object"),
    ("entry empty", [{"prefix": "s3://b/"}, "a", ""], "element [2] is an empty string"),
    ("no entries", [{"prefix": "s3://b/"}], "it lists no objects"),
]


@pytest.mark.parametrize(
    ("document", "problem"),
    [(document, problem) for _, document, problem in MALFORMED],
    ids=[case for case, _, _ in MALFORMED],
)
def test_malformed_manifest(buckets: Buckets, document: object, problem: str) -> None:
    uri = buckets.put_manifest(document)

    reason = failure_of(buckets, uri, "training-data")

    assert reason.startswith(f"ClientError: Manifest {uri} of input 'training-data' is malformed: ")
    assert problem in reason
    assert '[{"prefix": "s3://bucket/path/"}' in reason  # says what the format is


def test_missing_entries_are_named(buckets: Buckets) -> None:
    buckets.put(buckets.data, "p/here.csv", b"h")
    uri = buckets.put_manifest(
        [{"prefix": f"s3://{buckets.data}/p/"}, "x.csv", "here.csv", "y.csv", "x.csv"]
    )

    reason = failure_of(buckets, uri)

    assert reason == (
        f"ClientError: Manifest {uri} of input 'data' lists 2 missing object(s): "
        f"s3://{buckets.data}/p/x.csv, s3://{buckets.data}/p/y.csv"
    )


def test_many_missing_entries_are_summarised(buckets: Buckets) -> None:
    uri = buckets.put_manifest([{"prefix": f"s3://{buckets.data}/p/"}, *map(str, range(25))])

    reason = failure_of(buckets, uri)

    assert "lists 25 missing object(s): " in reason
    assert reason.endswith(f"s3://{buckets.data}/p/9, and 15 more")
    assert f"s3://{buckets.data}/p/10" not in reason


def test_entries_that_cannot_be_keys_are_missing(buckets: Buckets) -> None:
    """`../x` or `a//b` name no file in the folder store and nothing that exists in S3."""
    uri = buckets.put_manifest([{"prefix": f"s3://{buckets.data}/p/"}, "../m.json"])

    assert "lists 1 missing object(s): " in failure_of(buckets, uri)


def test_prefix_bucket_missing(buckets: Buckets) -> None:
    uri = buckets.put_manifest([{"prefix": "s3://no-such-bucket-for-manifest/p/"}, "a"])

    reason = failure_of(buckets, uri)

    assert reason.startswith("ClientError: ") and "no-such-bucket-for-manifest" in reason
    assert f"Manifest {uri} of input 'data'".lower() in reason.lower()


def test_manifest_itself_missing(buckets: Buckets) -> None:
    uri = f"s3://{buckets.data}/manifests/none.json"

    reason = failure_of(buckets, uri)

    assert reason.startswith(f"ClientError: Manifest {uri} of input 'data' does not exist.")


def test_manifest_uri_naming_a_bucket_only(buckets: Buckets) -> None:
    uri = f"s3://{buckets.data}/"

    assert "does not exist" in failure_of(buckets, uri)


def test_manifest_in_a_missing_bucket(buckets: Buckets) -> None:
    uri = "s3://no-such-bucket-for-manifest/m.json"

    reason = failure_of(buckets, uri)

    assert reason.startswith("ClientError: ") and uri in reason and "'data'" in reason
