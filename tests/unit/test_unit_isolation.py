"""What tests/unit/conftest.py promises every unit test: no Docker engine to reach, no connection
over IP, and the engine and S3 fixtures refused (also when asked for at run time)."""

from __future__ import annotations

import os
import socket

import pytest


def test_docker_host_is_a_socket_that_does_not_exist() -> None:
    host = os.environ["DOCKER_HOST"]
    assert host.startswith("unix:///nonexistent/")
    assert not os.path.exists(host.removeprefix("unix://"))


def test_connections_over_ip_are_refused_and_local_sockets_still_work() -> None:
    with socket.socket() as sock, pytest.raises(OSError, match="a unit test may not connect"):
        sock.connect(("127.0.0.1", 9))
    with (
        socket.socket(socket.AF_INET6) as sock,
        pytest.raises(OSError, match="a unit test may not connect"),
    ):
        sock.connect_ex(("::1", 9))
    left, right = socket.socketpair()  # what a pure function may use (a local pair) still works
    with left, right:
        left.sendall(b"x")
        assert right.recv(1) == b"x"


@pytest.mark.parametrize(
    "fixture", ["docker_client", "entrypoint_image", "localproc", "s3_server", "s3", "own_s3"]
)
def test_the_engine_and_s3_fixtures_are_refused(
    request: pytest.FixtureRequest, fixture: str
) -> None:
    with pytest.raises(pytest.fail.Exception, match="move it to tests/integration"):
        request.getfixturevalue(fixture)
