"""The user's cache folder (`$XDG_CACHE_HOME/localproc`, else `~/.cache/localproc`): things worked
out once and kept to start faster. Everything in it can be rebuilt, so writing is best effort.
Standard library only: the help fast path imports this before anything else."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def cache_dir(kind: str) -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "localproc" / kind


def write_atomically(path: Path, text: str) -> None:
    """Readers see the old file or the new one, never half of one. A read-only or full disk
    only means the work is done again next time."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink()
