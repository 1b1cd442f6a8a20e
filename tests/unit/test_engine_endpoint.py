"""runtime/endpoint.py: which engine localproc talks to (as the Docker CLI would) and whether
its containers can bind-mount this machine's folders, which picks the engine backend."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from localproc.errors import CannotRunHere
from localproc.runtime.endpoint import Endpoint, resolve_endpoint, shares_files


def _context(config_dir: Path, name: str, host: str) -> None:
    meta = config_dir / "contexts" / "meta" / hashlib.sha256(name.encode()).hexdigest()
    meta.mkdir(parents=True)
    document = {"Name": name, "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": False}}}
    (meta / "meta.json").write_text(json.dumps(document))


def test_docker_host_wins_over_any_context(tmp_path: Path) -> None:
    _context(tmp_path, "far", "tcp://far.example:2376")
    env = {"DOCKER_HOST": "tcp://10.0.0.5:2375", "DOCKER_CONTEXT": "far",
           "DOCKER_CONFIG": str(tmp_path)}  # fmt: skip
    assert resolve_endpoint(env) == Endpoint("tcp://10.0.0.5:2375", "DOCKER_HOST")


def test_the_current_context_of_the_cli_config_names_the_engine(tmp_path: Path) -> None:
    _context(tmp_path, "builder", "ssh://me@builder")
    (tmp_path / "config.json").write_text(json.dumps({"currentContext": "builder"}))
    endpoint = resolve_endpoint({"DOCKER_CONFIG": str(tmp_path)})
    assert endpoint.url == "ssh://me@builder" and endpoint.context == "builder"
    assert not shares_files(endpoint, {})


def test_docker_context_overrides_the_config_file(tmp_path: Path) -> None:
    _context(tmp_path, "a", "tcp://a:2375")
    _context(tmp_path, "b", "unix:///run/b.sock")
    (tmp_path / "config.json").write_text(json.dumps({"currentContext": "a"}))
    env = {"DOCKER_CONFIG": str(tmp_path), "DOCKER_CONTEXT": "b"}
    assert resolve_endpoint(env).url == "unix:///run/b.sock"


def test_an_unknown_context_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CannotRunHere, match="context 'nowhere' is not defined"):
        resolve_endpoint({"DOCKER_CONFIG": str(tmp_path), "DOCKER_CONTEXT": "nowhere"})


def test_no_setting_is_the_default_socket(tmp_path: Path) -> None:
    endpoint = resolve_endpoint({"DOCKER_CONFIG": str(tmp_path)})
    assert endpoint.on_this_machine and endpoint.source == "default"


@pytest.mark.parametrize(
    ("url", "shared"),
    [
        ("unix:///var/run/docker.sock", True),
        ("tcp://127.0.0.1:2375", False),  # a loopback port may forward anywhere
        ("tcp://10.1.2.3:2376", False),
        ("ssh://user@host", False),
    ],
)
def test_only_a_unix_socket_is_taken_to_share_files(url: str, shared: bool) -> None:
    assert shares_files(Endpoint(url, "DOCKER_HOST"), {}) is shared


def test_the_override_forces_either_backend_and_rejects_other_values() -> None:
    local, remote = Endpoint("unix:///x.sock", "DOCKER_HOST"), Endpoint("tcp://h:1", "DOCKER_HOST")
    assert shares_files(local, {"LOCALPROC_ENGINE_FILES": "copy"}) is False
    assert shares_files(remote, {"LOCALPROC_ENGINE_FILES": "Shared"}) is True
    with pytest.raises(CannotRunHere, match="LOCALPROC_ENGINE_FILES='sometimes'"):
        shares_files(local, {"LOCALPROC_ENGINE_FILES": "sometimes"})
