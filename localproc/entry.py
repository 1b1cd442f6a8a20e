"""The `localproc` program: help from the cache when it is there, the CLI otherwise."""

from __future__ import annotations

import sys


def main() -> None:
    from localproc import helpcache

    command_path = helpcache.help_request(sys.argv[1:])
    if command_path is not None and helpcache.invoked_as_program():
        text = helpcache.read(command_path)
        if text is not None:
            sys.stdout.write(text)
            sys.stdout.flush()
            return
    from localproc.cli.app import main as cli_main

    cli_main()
