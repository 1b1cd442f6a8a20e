"""The local Docker engine implements every method of the engine seam with the seam's
signature (runtime/protocol.py), so execution/ can drive it, or any other implementation,
through the protocol alone. No Docker needed: nothing here connects."""

from __future__ import annotations

import inspect

from localproc.runtime.docker_run import DockerRun
from localproc.runtime.protocol import Engine


def protocol_methods() -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in vars(Engine).items()
        if callable(member) and not name.startswith("_")
    }


def test_docker_run_implements_every_method_of_the_seam() -> None:
    methods = protocol_methods()
    assert {"create_network", "place_inputs", "pipe", "place_config", "create_instances"} <= set(
        methods
    )
    for name, signature in methods.items():
        implementation = getattr(DockerRun, name, None)
        assert implementation is not None, name
        assert list(inspect.signature(implementation).parameters) == list(signature.parameters), (
            name
        )
