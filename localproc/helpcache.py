"""`localproc --help` and `localproc COMMAND --help` answered from text saved the first time.

Rendering help means importing typer and click and building every command (about 0.15 s); the
text only changes when the CLI code (localproc/cli/ and the run options' declaration,
service/options.py), typer, click, the home folder (shown in defaults) or the terminal width
change, so it is kept in the user's cache folder under a key made of exactly those. This
module imports nothing beyond the standard library's light modules: it runs before anything
else.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

from localproc.usercache import cache_dir, write_atomically

PROGRAM = "localproc"
_PACKAGE = Path(__file__).parent


def help_request(argv: list[str]) -> tuple[str, ...] | None:
    """The command path whose help is asked for: () for `--help`, ("run",) for `run --help`;
    None for anything else (those go through the CLI as usual)."""
    if argv == ["--help"]:
        return ()
    if len(argv) == 2 and argv[1] == "--help" and not argv[0].startswith("-"):
        return (argv[0],)
    return None


def invoked_as_program() -> bool:
    # `python -m localproc` shows another program name in the usage line: not cached.
    return os.path.basename(sys.argv[0]) == PROGRAM


def read(command_path: tuple[str, ...]) -> str | None:
    try:
        return _cache_file(command_path).read_text(encoding="utf-8")
    except OSError:
        return None


def store(command_path: tuple[str, ...], text: str) -> None:
    """Best effort: without a writable cache folder, help is rendered each time."""
    write_atomically(_cache_file(command_path), text)


def _cache_file(command_path: tuple[str, ...]) -> Path:
    return cache_dir("help") / f"{_key(command_path)}.txt"


def help_sources() -> list[Path]:
    """The files the help text is made from: the CLI's modules and the run options'."""
    return sorted((_PACKAGE / "cli").glob("*.py")) + [_PACKAGE / "service" / "options.py"]


def _key(command_path: tuple[str, ...]) -> str:
    from importlib.util import find_spec

    from localproc import __version__

    parts = [__version__, str(Path.home()), str(shutil.get_terminal_size().columns)]
    parts += list(command_path)
    sources = [str(path) for path in help_sources()]
    for package in ("typer", "click"):
        spec = find_spec(package)
        sources.append(str(spec.origin if spec else None))
    for source in sources:
        try:
            info = os.stat(source)
            parts.append(f"{source}:{info.st_size}:{info.st_mtime_ns}")
        except OSError:
            parts.append(f"{source}:missing")
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]
