"""The test harness's engine node (tests/engine_nodes.py) is what the remote-engine tests rely
on: reached over TCP, holding the example image, and sharing no folder with the client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from docker_engine import EXAMPLE_IMAGE
from engine_nodes import EngineNode


def test_the_node_answers_over_tcp_with_the_example_image(remote_docker: Any) -> None:
    assert remote_docker.ping()
    assert remote_docker.images.get(EXAMPLE_IMAGE)


def test_a_client_folder_bind_mounted_on_the_node_is_not_the_clients(
    remote_engine: EngineNode, remote_docker: Any, tmp_path: Path
) -> None:
    (tmp_path / "client-file").write_text("only on the client")
    listing = remote_docker.containers.run(
        EXAMPLE_IMAGE, ["sh", "-c", "ls -A /seen; true"], remove=True,
        volumes={str(tmp_path): {"bind": "/seen", "mode": "ro"}},
    )  # fmt: skip
    assert b"client-file" not in listing


def test_the_node_is_not_this_machines_engine(remote_docker: Any, docker_client: Any) -> None:
    assert remote_docker.info()["ID"] != docker_client.info()["ID"]
