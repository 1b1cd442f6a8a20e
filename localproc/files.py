"""Folders of the state dir: made private, removed whatever a container left in them."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path


def remove_tree(path: Path) -> None:
    """Remove a folder and everything in it, as far as possible, never following a symlink.
    What containers leave can be nested deeper than Python's own removal recurses (a job's
    folder 5,000 levels deep); `rm -rf` then walks it with directory descriptors instead."""
    if path.is_symlink():  # a job folder linked from elsewhere: the link goes, not its target
        path.unlink()
        return
    try:
        shutil.rmtree(path, ignore_errors=True)
    except RecursionError:
        subprocess.run(
            ["rm", "-rf", "--one-file-system", "--", str(path)], capture_output=True, check=False
        )


def private_dir(path: Path) -> Path:
    """A folder of the state dir that only its owner may enter: what jobs wrote (their inputs,
    outputs, logs) is nobody else's to read, run or change."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if os.stat(path).st_mode & 0o077:
        os.chmod(path, 0o700)
    return path
