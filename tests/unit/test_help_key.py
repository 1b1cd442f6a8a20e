"""The help cache's key follows the files the help text is made from: a changed command or run
option must never be answered with the help saved before the change."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import localproc
from localproc import helpcache

PACKAGE = Path(localproc.__file__).parent


@pytest.mark.parametrize("source", ["cli/app.py", "cli/run_commands.py", "service/options.py"])
def test_the_key_changes_when_a_source_of_the_help_changes(source: str) -> None:
    path = PACKAGE / source
    if not path.is_file():
        pytest.fail(f"{source} is not in the package")
    before = path.stat()
    key = helpcache._key(("run",))
    try:
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))
        assert helpcache._key(("run",)) != key
    finally:
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert helpcache._key(("run",)) == key


def test_every_source_of_the_key_exists() -> None:
    assert all(path.is_file() for path in helpcache.help_sources())
