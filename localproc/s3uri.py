"""S3 URIs as the API accepts them (`s3://` and `https://` object URLs) split into bucket and key.
Pure and dependency-free: validation, planning and the stores all read URIs the same way."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

# Hosts of AWS S3 URLs: `s3.amazonaws.com`, `s3.REGION.amazonaws.com`, the legacy `s3-REGION`,
# `s3.dualstack.REGION`, China's `.amazonaws.com.cn`; with a leading `BUCKET.` in virtual-hosted
# style. Bucket names may contain dots, so the bucket is whatever precedes the last `s3` label
# that is followed only by endpoint labels.
_S3_HOST = re.compile(
    r"(?:(?P<bucket>.+)\.)?s3(?:[.-][a-z0-9-]+)*?\.amazonaws\.com(?:\.cn)?", re.IGNORECASE
)

_URI_FORMS = (
    "s3://BUCKET/KEY, https://BUCKET.s3.REGION.amazonaws.com/KEY or "
    "https://s3.REGION.amazonaws.com/BUCKET/KEY"
)


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """Split an S3 URI into (bucket, key); the key may be empty (`s3://bucket`, `s3://bucket/`).

    `s3://` keys are taken literally, the way the AWS CLI does; `https://` paths are
    percent-decoded because that is how object URLs encode keys. Raises ValueError otherwise.
    """
    scheme, sep, _ = uri.partition("://")
    if sep and scheme.lower() == "s3":
        bucket, _, key = uri[len(scheme) + 3 :].partition("/")
        return _checked(uri, bucket), key
    if sep and scheme.lower() == "https":
        return _parse_https(uri)
    raise ValueError(f"Not an S3 URI: {uri!r}; expected {_URI_FORMS}")


def _parse_https(uri: str) -> tuple[str, str]:
    parts = urlsplit(uri)
    if parts.query or parts.fragment:
        # A `?versionId=` or a presigned query would silently name something else than the key.
        raise ValueError(f"S3 URI {uri!r} has a query or fragment, which is not supported")
    host = parts.hostname or ""
    match = _S3_HOST.fullmatch(host)
    if match is None or parts.port is not None:
        raise ValueError(f"Not an S3 URL: {uri!r} (host {host!r}); expected {_URI_FORMS}")
    path = parts.path
    if match.group("bucket") is not None:
        return _checked(uri, match.group("bucket")), unquote(path.removeprefix("/"))
    bucket, _, key = path.removeprefix("/").partition("/")
    return _checked(uri, unquote(bucket)), unquote(key)


def _checked(uri: str, bucket: str) -> str:
    if not bucket:
        raise ValueError(f"S3 URI {uri!r} names no bucket; expected {_URI_FORMS}")
    return bucket
