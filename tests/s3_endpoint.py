"""A real S3 endpoint for tests: moto's server, over HTTP on 127.0.0.1.

Loaded as a pytest plugin (`pytest_plugins = ["s3_endpoint"]` in conftest.py). Fixtures:

- `aws_test_env` (session): dummy credentials and region in the environment, the host's AWS
  configuration hidden; restored at the end of the session.
- `s3_server` (session): the running server, as an `S3Server` with `.endpoint_url`.
- `s3` (function): an `S3Helper` with `.client` (boto3, for that endpoint), `.endpoint_url`,
  `.region` and `make_bucket()`; buckets it made are emptied and deleted afterwards.
- `own_s3` (function): (endpoint, client, server) of a server of the test's own with a bucket
  `faults`, for tests that stop it or put a freezable proxy in front of it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

REGION = "us-east-1"

# The host's AWS setup must not leak in: a profile, an endpoint or a session token would make
# boto3 talk to somewhere other than the test server, or sign differently.
_HIDDEN_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL_KMS",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
)


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str


@dataclass
class S3Helper:
    client: Any
    endpoint_url: str
    region: str = REGION
    made_buckets: list[str] = field(default_factory=list)

    def make_bucket(self) -> str:
        """Create a bucket with a fresh name (tests share one server) and return its name."""
        name = f"localproc-test-{uuid.uuid4().hex[:16]}"
        self.client.create_bucket(Bucket=name)
        self.made_buckets.append(name)
        return name

    def remove_buckets(self) -> None:
        # moto keeps everything in memory for the whole session; large test objects add up.
        for bucket in self.made_buckets:
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=bucket):
                keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
                if keys:
                    self.client.delete_objects(Bucket=bucket, Delete={"Objects": keys})
            self.client.delete_bucket(Bucket=bucket)
        self.made_buckets.clear()


@pytest.fixture(scope="session")
def aws_test_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Dummy credentials for the whole session; the environment is restored afterwards."""
    empty = tmp_path_factory.mktemp("aws-config") / "none"
    with pytest.MonkeyPatch.context() as patch:
        for name in _HIDDEN_VARIABLES:
            patch.delenv(name, raising=False)
        # Point boto3 at files that do not exist so ~/.aws cannot add profiles or endpoints.
        patch.setenv("AWS_CONFIG_FILE", str(empty))
        patch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        patch.setenv("AWS_DEFAULT_REGION", REGION)
        patch.setenv("AWS_REGION", REGION)
        # No instance metadata lookups: they only add seconds of timeouts on a laptop.
        patch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        yield


@pytest.fixture(scope="session")
def s3_server(aws_test_env: None) -> Iterator[S3Server]:
    from moto.server import ThreadedMotoServer

    # Port 0: the OS picks a free port, so parallel sessions never collide.
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield S3Server(endpoint_url=f"http://{host}:{port}")
    finally:
        server.stop()


@pytest.fixture
def s3(s3_server: S3Server) -> Iterator[S3Helper]:
    import boto3

    client = boto3.client("s3", endpoint_url=s3_server.endpoint_url, region_name=REGION)
    helper = S3Helper(client=client, endpoint_url=s3_server.endpoint_url)
    try:
        yield helper
    finally:
        helper.remove_buckets()


@pytest.fixture
def own_s3(aws_test_env: None) -> Iterator[tuple[str, Any, Any]]:
    """An S3 server of the test's own (the test stops or freezes it without touching others)."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.create_bucket(Bucket="faults")
    try:
        yield endpoint, client, server
    finally:
        server.stop()
