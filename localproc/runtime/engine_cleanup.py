"""Removing a run's engine objects: its containers, networks and (the archive backend's)
volumes, each kind all at once."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from localproc.runtime.engine_errors import engine_errors

# The engine removes several containers in about the time of one.
MAX_PARALLEL_REMOVALS = 16


def remove_objects(
    client: Any,
    containers: Sequence[str],
    networks: Sequence[str],
    what: str,
    volumes: Sequence[str] = (),
) -> None:
    """Remove the containers (whatever their state), then the networks, then the volumes (once
    the containers that used them are gone); objects already gone are no error."""
    import docker.errors

    def remove(container_id: str) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            client.api.remove_container(container_id, force=True)

    def remove_volume(volume: str) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            client.api.remove_volume(volume, force=True)

    with engine_errors(f"removing the containers and networks of {what}"):
        _all_at_once(remove, containers)
        for network_id in networks:
            with contextlib.suppress(docker.errors.NotFound):
                client.api.remove_network(network_id)
        _all_at_once(remove_volume, volumes)


def _all_at_once(action: Any, items: Sequence[str]) -> None:
    with ThreadPoolExecutor(max_workers=max(1, min(len(items), MAX_PARALLEL_REMOVALS))) as pool:
        list(pool.map(action, items))
