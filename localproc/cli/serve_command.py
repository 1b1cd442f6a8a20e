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
    when the server stops (Ctrl-C or SIGTERM); StopProcessingJob or `localproc stop` stops them."""
    from localproc.serve.server import serve as serve_forever

    serve_forever(settings_for(options), host, port, max_concurrent_jobs)
