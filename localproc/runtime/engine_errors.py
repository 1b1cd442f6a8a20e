"""The Docker SDK's errors as EngineError, so that no caller needs to import docker."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from localproc.runtime.protocol import EngineError


@contextlib.contextmanager
def engine_errors(action: str) -> Iterator[None]:
    """Turn the SDK's errors into EngineError, so callers need not import docker."""
    import docker.errors

    try:
        yield
    except (docker.errors.DockerException, OSError) as err:
        raise EngineError(f"Docker engine: {action} failed: {first_line(err)}") from err


def first_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0]
