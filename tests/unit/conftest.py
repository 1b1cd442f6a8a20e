"""tests/unit: no Docker engine and no network. The fixtures that would reach either fail here
(also when a test asks for them at run time, through `request.getfixturevalue`), and every
test runs with Docker pointed at a socket that does not exist and outbound IP connections
refused, so a unit test that starts needing an engine or a server fails instead of slowing
down; such a test belongs in tests/integration."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

_ENGINE_OR_NETWORK = (
    "docker_client", "entrypoint_image", "localproc", "s3_server", "s3", "own_s3",
    "remote_engine", "remote_docker", "remote_ssh",
)  # fmt: skip


def _refused(name: str) -> Any:
    @pytest.fixture(name=name)
    def fixture() -> Any:
        pytest.fail(f"a unit test may not use the {name!r} fixture: move it to tests/integration")

    return fixture


for _name in _ENGINE_OR_NETWORK:
    globals()[f"_refuse_{_name}"] = _refused(_name)


class NetworkRefused(OSError):
    """A unit test tried to connect somewhere over IP."""


@pytest.fixture(autouse=True)
def _no_engine_no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/localproc-unit-tests.sock")
    connect = socket.socket.connect
    connect_ex = socket.socket.connect_ex

    def guarded(method: Any) -> Any:
        def call(self: socket.socket, address: Any) -> Any:
            if self.family in (socket.AF_INET, socket.AF_INET6):
                raise NetworkRefused(f"a unit test may not connect to {address!r}")
            return method(self, address)

        return call

    monkeypatch.setattr(socket.socket, "connect", guarded(connect))
    monkeypatch.setattr(socket.socket, "connect_ex", guarded(connect_ex))
    yield
