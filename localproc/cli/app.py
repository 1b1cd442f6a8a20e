"""The `localproc` command line: the typer app and its commands, each of which parses, makes one
call into the service layer, prints.

The commands live in run_commands.py (validate, plan, run, reproduce), job_commands.py
(describe, list, stop, delete, logs, gc) and serve_command.py (serve, console); every one runs
inside `errors.user_errors`, the one place where a user error becomes a message and an exit code.
Library modules are imported inside the commands so `localproc --help` does not load boto3 or
the docker SDK.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn

import typer

from localproc import helpcache
from localproc.cli import job_commands, pipeline_commands, run_commands, serve_command
from localproc.cli.errors import user_errors
from localproc.errors import ExitStatus

app = typer.Typer(
    name="localproc",
    help="Run Amazon SageMaker Processing jobs on this host in Docker, as the service does.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: rich-formatted help imports rich and markdown-it, which costs ~0.5 s per call.
    rich_markup_mode=None,
)

# In the order `localproc --help` lists them.
COMMANDS: list[tuple[str | None, Callable[..., Any]]] = [
    (None, run_commands.validate),
    (None, run_commands.plan),
    (None, run_commands.run),
    (None, run_commands.reproduce),
    (None, job_commands.describe),
    ("list", job_commands.list_),
    (None, job_commands.stop),
    (None, job_commands.delete),
    (None, job_commands.logs),
    (None, job_commands.gc),
    (None, serve_command.serve),
    (None, serve_command.console),
]
for _name, _command in COMMANDS:
    app.command(_name)(user_errors()(_command))
app.add_typer(pipeline_commands.app)  # `localproc pipeline …`: SageMaker Pipelines


def main() -> None:
    for stream in (sys.stdout, sys.stderr):
        # Whatever the terminal's encoding, any text can be printed (as backslash escapes).
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    try:
        _help_from_cache_or_app()
    except KeyboardInterrupt:
        _end_process(int(ExitStatus.STOPPED))
    except SystemExit as ending:
        _end_process(ending.code)


def _help_from_cache_or_app() -> None:
    """Help for `localproc` and `localproc COMMAND` is rendered here rather than by click, so
    that its text can be kept for the next call (see helpcache)."""
    command_path = helpcache.help_request(sys.argv[1:])
    if command_path is None or not helpcache.invoked_as_program():
        app()
        return
    text = render_help(command_path)
    if text is None:  # not one of our commands: click says so
        app()
        return
    helpcache.store(command_path, text)
    sys.stdout.write(text)
    raise SystemExit(0)


def render_help(command_path: tuple[str, ...]) -> str | None:
    """Exactly what `--help` prints (click's help option echoes `ctx.get_help()` and a newline)."""
    import click

    group = typer.main.get_command(app)
    context = group.context_class(group, info_name=helpcache.PROGRAM)
    command: click.Command = group
    for name in command_path:
        assert isinstance(command, click.Group)
        found = command.get_command(context, name)
        if found is None:
            return None
        command = found
        context = command.context_class(command, info_name=name, parent=context)
    return command.get_help(context) + "\n"


def _end_process(code: object) -> NoReturn:
    """Exit without the interpreter's teardown, which spends about 0.3 s freeing the models and
    clients a run loaded: every run would pay it. Only once the command has finished everything:
    no other thread is left (the runner joins its own), every file it wrote is closed, and the
    standard streams are flushed here."""
    import contextlib
    import threading

    if not isinstance(code, int | None) or threading.active_count() > 1:
        raise SystemExit(code)
    for stream in (sys.stdout, sys.stderr):
        # A closed pipe (`localproc list | head`): nothing more can reach it anyway.
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code or 0)
