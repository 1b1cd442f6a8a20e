"""tests/unit: no Docker engine and no network. Every test here runs with DOCKER_HOST pointing
at a socket that does not exist and with connections over IP refused, so a unit test that starts
needing an engine or a server fails at once instead of slowing down: such a test belongs in
tests/integration. The engine and S3 fixtures are not offered here at all (they live in
tests/integration/conftest.py)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

DEAD_DOCKER_HOST = "unix:///nonexistent/localproc-unit-tests.sock"


class NetworkRefused(OSError):
    """A unit test tried to connect somewhere over IP."""


def _refusing(method: Any) -> Any:
    def connect(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            raise NetworkRefused(f"a unit test may not connect to {address!r}")
        return method(self, address)

    return connect


@pytest.fixture(autouse=True)
def _no_engine_no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("DOCKER_HOST", DEAD_DOCKER_HOST)
    monkeypatch.setattr(socket.socket, "connect", _refusing(socket.socket.connect))
    monkeypatch.setattr(socket.socket, "connect_ex", _refusing(socket.socket.connect_ex))
    yield
