"""Podman's side of the engine seam, pure parts: telling Podman from Docker by its /_ping
answer, where its sockets are looked for, and reading its libpod stats stream (fed here from a
recorded answer; the real stream is exercised by the `[podman]` integration tests)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from localproc.runtime import podman
from localproc.runtime.protocol import UsageSample

# The engines' real /_ping answer headers (Podman 4.3.1 and Docker 20.10 on Debian 12).
PODMAN_PING = {
    "Api-Version": "1.41",
    "Docker-Experimental": "true",
    "Libpod-Api-Version": "4.3.1",
    "Libpod-Buildah-Version": "1.28.2",
    "Server": "Libpod/4.3.1 (linux)",
}
DOCKER_PING = {
    "Api-Version": "1.41",
    "Docker-Experimental": "false",
    "Ostype": "linux",
    "Server": "Docker/20.10.24+dfsg1 (linux)",
}


def test_podman_is_told_from_docker_by_its_ping_answer() -> None:
    assert podman.is_podman_ping(PODMAN_PING)
    assert podman.is_podman_ping({"libpod-api-version": "5.0.0"})  # header names are any case
    assert not podman.is_podman_ping(DOCKER_PING)
    assert not podman.is_podman_ping({})  # an engine that says nothing is taken for Docker


def test_the_users_own_socket_is_tried_before_the_systems(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
    assert podman.engine_sockets() == [
        "unix:///run/user/1000/podman/podman.sock",
        "unix:///run/podman/podman.sock",
    ]
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert podman.engine_sockets()[-1] == "unix:///run/podman/podman.sock"


class _Response:
    def __init__(self, lines: list[bytes], status: int = 200) -> None:
        self.status_code = status
        self._lines = lines
        self.closed = False

    def iter_lines(self) -> Iterator[bytes]:
        yield from self._lines

    def close(self) -> None:
        self.closed = True


class _Api:
    base_url = "http+docker://localhost"

    def __init__(self, response: _Response) -> None:
        self.response = response
        self.asked: list[tuple[str, dict[str, Any]]] = []

    def get(self, url: str, params: dict[str, Any], **_: Any) -> _Response:
        self.asked.append((url, params))
        return self.response


class _Client:
    def __init__(self, response: _Response) -> None:
        self.api = _Api(response)


def _line(memory: int, cpu_nano: int, uptime: int) -> bytes:
    stats = {"MemUsage": memory, "CPUNano": cpu_nano, "UpTime": uptime, "PIDs": 1}
    return json.dumps({"Error": None, "Stats": [stats]}).encode()


def test_stats_are_read_once_a_second_until_the_container_has_ended() -> None:
    response = _Response(
        [
            _line(2_695_168, 33_552_646, 33_552_646),
            b"",  # keep-alive
            _line(318_218_240, 239_003_747, 239_003_747),
            _line(0, 0, 0),  # ended: Podman goes on sending zeros, which must not be read
            _line(999, 999, 999),
        ]
    )
    client = _Client(response)

    samples = list(podman.stats(client, "abc123"))

    assert samples == [
        UsageSample(2_695_168, 0.033552646),
        UsageSample(318_218_240, 0.239003747),
    ]
    url, params = client.api.asked[0]
    assert url == "http+docker://localhost/v4.0.0/libpod/containers/stats"
    assert params == {"containers": "abc123", "stream": "true", "interval": 1}
    assert response.closed


def test_stats_of_a_container_podman_no_longer_knows_are_none() -> None:
    assert list(podman.stats(_Client(_Response([], status=404)), "gone")) == []
    assert list(podman.stats(_Client(_Response([b"not json"])), "odd")) == []
