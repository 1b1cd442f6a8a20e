"""`localproc serve`: the options, then the HTTP front door (serve/) runs until stopped."""

from __future__ import annotations

from typing import Annotated

import typer

from localproc.cli.options import settings_for, with_run_options
from localproc.service.options import RunOptions

SERVE_OPTIONS = (
    "s3_root", "s3_endpoint_url", "region", "state_dir", "keep_staging", "stop_grace",
    "no_resource_limits", "no_cache", "cache_size_gb", "cluster",
)  # fmt: skip


@with_run_options(*SERVE_OPTIONS)
def serve(
    host: Annotated[
        str,
        typer.Option(
            help="Address to listen on. Requests are not signature-checked: anything but a "
            "loopback address lets others run containers on this host."
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port; 0 picks a free one (printed on start).")] = 8080,
    max_concurrent_jobs: Annotated[
        int,
        typer.Option(
            min=1,
            help="At most this many of the server's jobs run at once; beyond it "
            "CreateProcessingJob answers ResourceLimitExceeded.",
        ),
    ] = 4,
    *,
    options: RunOptions,
) -> None:
    """A SageMaker-compatible endpoint (AWS JSON 1.1) for Create/Describe/List/Stop/Delete
    ProcessingJob, so boto3, the AWS CLI and the SageMaker Python SDK run jobs here
    (`--endpoint-url http://127.0.0.1:PORT`). Jobs run in background processes and keep running
    when the server stops (Ctrl-C or SIGTERM); StopProcessingJob or `localproc stop` stops them.
    It also answers the SageMaker Pipelines API: a pipeline's processing steps run as jobs here,
    its executions in the server, which stops them (and their step jobs) when it stops."""
    from localproc.serve.server import serve as serve_forever

    serve_forever(settings_for(options), host, port, max_concurrent_jobs)


@with_run_options(*SERVE_OPTIONS)
def console(
    host: Annotated[
        str,
        typer.Option(
            help="Address to listen on (as `serve`). The console and the API share it: anything "
            "but a loopback address lets others see and run jobs here."
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port; 0 picks a free one (printed on start).")] = 8080,
    max_concurrent_jobs: Annotated[
        int, typer.Option(min=1, help="As `serve`: at most this many of its jobs at once.")
    ] = 4,
    open_browser: Annotated[
        bool,
        typer.Option(
            "--open/--no-open",
            help="Open the console in a browser when this machine has a display (the URL is "
            "printed either way).",
        ),
    ] = True,
    *,
    options: RunOptions,
) -> None:
    """The console in the browser: `serve` (same endpoint, same options) with its jobs page at
    http://HOST:PORT/ — every recorded job, its timeline, live logs, memory and CPU against the
    instance type, outputs, Stop and Delete. Runs until Ctrl-C."""
    from localproc.serve.server import serve as serve_forever

    def show(url: str) -> None:
        page = f"{url}/"
        if open_browser and _has_display():
            typer.echo(f"localproc console: opening {page} in a browser")
            _open_in_background(page)
        else:
            typer.echo(f"localproc console: open {page} in a browser")

    serve_forever(settings_for(options), host, port, max_concurrent_jobs, on_listening=show)


def _has_display() -> bool:
    """A browser can only show the page where there is a screen: a graphical session on Linux
    (X11 or Wayland), or macOS / Windows. Over SSH or in a container there is none, and Python's
    webbrowser would start a text browser in this terminal instead."""
    import os
    import sys

    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _open_in_background(url: str) -> None:
    """webbrowser.open can wait for the browser it starts: never on serving's thread."""
    import threading
    import webbrowser

    threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()
