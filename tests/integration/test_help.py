"""`--help` from the `localproc` program, as users run it: rendered by click the first time,
then read from the cache folder (it is asked for far more often than the CLI changes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROGRAM = Path(sys.executable).parent / "localproc"


def _run(args: list[str], cache: Path, home: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), "COLUMNS": "80"}
    if home is not None:
        env["HOME"] = str(home)
    return subprocess.run(
        [str(PROGRAM), *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def _clicks_own_help(args: list[str], home: Path | None = None) -> str:
    """The help typer/click print themselves (`python -m` is never served from the cache)."""
    env = {**os.environ, "COLUMNS": "80"}
    if home is not None:
        env["HOME"] = str(home)
    shown = subprocess.run(
        [sys.executable, "-m", "localproc", *args], capture_output=True, text=True, check=True,
        env=env,
    ).stdout  # fmt: skip
    return shown.replace("Usage: python -m localproc", "Usage: localproc")


@pytest.mark.skipif(not PROGRAM.is_file(), reason="the localproc console script is not installed")
@pytest.mark.parametrize("args", [["--help"], ["run", "--help"], ["logs", "--help"]])
def test_help_is_the_same_from_click_and_from_the_cache(tmp_path: Path, args: list[str]) -> None:
    expected = _clicks_own_help(args)
    assert expected.startswith("Usage: localproc")

    first = _run(args, tmp_path)
    assert (first.returncode, first.stdout, first.stderr) == (0, expected, "")
    [cached] = (tmp_path / "localproc" / "help").glob("*.txt")
    assert cached.read_text() == expected

    # The second call reads the file: a mark put into it shows up.
    cached.write_text(expected + "(from the cache)\n")
    second = _run(args, tmp_path)
    assert second.returncode == 0
    assert second.stdout == expected + "(from the cache)\n"


@pytest.mark.skipif(not PROGRAM.is_file(), reason="the localproc console script is not installed")
def test_help_follows_the_home_folder_shown_in_defaults(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    shown = {}
    for home in (tmp_path / "a", tmp_path / "b"):
        shown[home] = _run(["run", "--help"], cache, home=home).stdout
        assert shown[home] == _clicks_own_help(["run", "--help"], home=home)
    assert len(set(shown.values())) == 2  # the --state-dir default differs
    assert len(list((cache / "localproc" / "help").glob("*.txt"))) == 2


@pytest.mark.skipif(not PROGRAM.is_file(), reason="the localproc console script is not installed")
def test_help_for_an_unknown_command_is_clicks_error_and_is_not_cached(tmp_path: Path) -> None:
    shown = _run(["nonesuch", "--help"], tmp_path)
    assert shown.returncode == 2
    assert "No such command 'nonesuch'" in shown.stderr
    assert not (tmp_path / "localproc" / "help").exists()
