"""Which Docker engine localproc talks to, and whether it shares this machine's filesystem.

The engine is the one the Docker CLI would use: `DOCKER_HOST` when set (unix://, tcp://, ssh://,
with DOCKER_TLS_VERIFY / DOCKER_CERT_PATH), else the Docker context that `DOCKER_CONTEXT` or
~/.docker/config.json's `currentContext` names, else the default socket.

Files: the local backend bind-mounts host folders, which is right only when the engine sees this
machine's folders. That is taken as proven for a unix socket (the engine runs on this machine)
and never assumed otherwise (tcp://, ssh://, a context pointing elsewhere): those get the archive
backend, which moves everything through the Engine API. `LOCALPROC_ENGINE_FILES=shared|copy`
overrides the choice (`copy` for an engine behind a local socket that sees other folders, e.g.
one in a VM or another mount namespace; `shared` for a remote engine that mounts the same paths).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localproc.errors import CannotRunHere

ENGINE_FILES_ENV = "LOCALPROC_ENGINE_FILES"
DEFAULT_SOCKET = "unix:///var/run/docker.sock"


@dataclass(frozen=True)
class Endpoint:
    url: str  # as the Docker CLI writes it: unix:///…, tcp://HOST:PORT, ssh://USER@HOST
    source: str  # where it came from, for messages: "DOCKER_HOST", "context NAME", "default"
    context: str | None = None  # the Docker context's name, when one names the engine

    @property
    def on_this_machine(self) -> bool:
        """A unix socket: the engine (or what forwards to it) runs here."""
        return self.url.startswith("unix://") or self.url.startswith("npipe://")

    @property
    def over_ssh(self) -> bool:
        """ssh://: reached through the system's ssh, as the Docker CLI does
        (runtime/ssh_tunnel.py)."""
        return self.url.startswith("ssh://")

    def describe(self) -> str:
        return self.url if self.source == "DOCKER_HOST" else f"{self.url} ({self.source})"


def resolve_endpoint(environ: Mapping[str, str] | None = None) -> Endpoint:
    environ = os.environ if environ is None else environ
    host = environ.get("DOCKER_HOST")
    if host:
        return Endpoint(host, "DOCKER_HOST")
    name = environ.get("DOCKER_CONTEXT") or _current_context(environ)
    if name and name != "default":
        url = _context_host(name, environ)
        if url is None:
            raise CannotRunHere(
                f"The Docker context '{name}' is not defined (`docker context ls` lists them), "
                "or it names no Docker endpoint. Set DOCKER_CONTEXT or DOCKER_HOST to an engine."
            )
        return Endpoint(url, f"context {name}", context=name)
    return Endpoint(DEFAULT_SOCKET, "default")


def shares_files(endpoint: Endpoint, environ: Mapping[str, str] | None = None) -> bool:
    """Whether the engine sees this machine's folders (so that bind mounts work)."""
    environ = os.environ if environ is None else environ
    override = (environ.get(ENGINE_FILES_ENV) or "").strip().lower()
    if override in ("shared", "copy"):
        return override == "shared"
    if override:
        raise CannotRunHere(
            f"{ENGINE_FILES_ENV}={environ[ENGINE_FILES_ENV]!r} is not one of: shared (bind-mount "
            "this machine's folders), copy (move files through the Engine API)."
        )
    return endpoint.on_this_machine


def _config_dir(environ: Mapping[str, str]) -> Path:
    configured = environ.get("DOCKER_CONFIG")
    return Path(configured) if configured else Path.home() / ".docker"


def _current_context(environ: Mapping[str, str]) -> str | None:
    try:
        config = json.loads((_config_dir(environ) / "config.json").read_text())
    except (OSError, ValueError):
        return None
    name = config.get("currentContext") if isinstance(config, dict) else None
    return name if isinstance(name, str) else None


def _context_host(name: str, environ: Mapping[str, str]) -> str | None:
    """The context's Docker endpoint, from the CLI's context store (meta.json, found by the
    SHA-256 of the name, as the CLI stores it)."""
    import hashlib

    digest = hashlib.sha256(name.encode()).hexdigest()
    meta = _config_dir(environ) / "contexts" / "meta" / digest / "meta.json"
    try:
        document: Any = json.loads(meta.read_text())
    except (OSError, ValueError):
        return None
    host = ((document.get("Endpoints") or {}).get("docker") or {}).get("Host")
    return host if isinstance(host, str) and host else None


def client_options(endpoint: Endpoint, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Keyword arguments for docker.DockerClient: the context's TLS material when it has some
    (DOCKER_HOST's TLS comes from the environment, as docker.from_env reads it)."""
    if endpoint.context is None:
        return {}
    from docker.context import Context

    context = Context.load_context(endpoint.context)
    tls = context.TLSConfig if context is not None else None
    return {"base_url": endpoint.url, "tls": tls or False}
