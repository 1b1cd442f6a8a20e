"""Where the CLI turns a user error (a LocalprocError) into its message and exit code: the one
boundary every command goes through."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import typer

from localproc.errors import LocalprocError
from localproc.printable import printable, printable_line


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """`localproc: CODE: message` on stderr and the error's exit status (2 rejected, 4 cannot
    run here, …) for any LocalprocError raised inside."""
    try:
        yield
    except LocalprocError as err:
        typer.echo(printable(f"localproc: {err.code}: {err}"), err=True)
        raise typer.Exit(int(err.exit_status)) from None


def notify(message: str) -> None:
    # One line each: a value from a container (a file name with a newline) cannot start a line
    # of its own that would pass for one of localproc's.
    typer.echo(printable_line(f"localproc: {message}"), err=True)
