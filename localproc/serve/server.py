"""`localproc serve`: a SageMaker-compatible HTTP endpoint, a thin adapter over the library calls
the CLI makes, so boto3, the AWS CLI and the SageMaker Python SDK run processing jobs here.

The wire protocol is the one botocore speaks to SageMaker, AWS JSON 1.1: `POST /` with
`X-Amz-Target: SageMaker.<Operation>` and a JSON body; a JSON result; errors as HTTP 400 with
`{"__type": CODE, "message": ...}`, which botocore raises as ClientError with that code.
Requests are not signature-checked: whoever can reach the port can run containers here, which is
why it binds 127.0.0.1 unless told otherwise.

Created jobs run in background processes of their own (`localproc run --detach`'s machinery);
they outlive the server, and StopProcessingJob or `localproc stop` stops them.

The same endpoint answers the CloudWatch Logs calls clients make for processing jobs
(`X-Amz-Target: Logs_20140328.<Operation>`, see cloudwatch_logs.py). Connections are served by
httpserve.py: a fixed pool of worker threads, whatever the number of connections.

The parts: api.py (the operations, each a call into the service layer), wire.py (the JSON 1.1
bodies and timestamps), errors.py (user errors as the service's error responses), endpoint.py
(the HTTP requests), console.py (`GET /`: the console in the browser); this module runs the
server.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from localproc.errors import CannotRunHere, ValidationException
from localproc.execution.prepare import RunSettings
from localproc.payload.service_model import sagemaker_model
from localproc.serve import cloudwatch_logs
from localproc.serve.api import DEFAULT_MAX_CONCURRENT_JOBS, ProcessingApi
from localproc.serve.console import is_loopback
from localproc.serve.endpoint import CONTENT_TYPE, MAX_BODY_BYTES, make_server
from localproc.serve.errors import ApiError, api_error
from localproc.serve.wire import checked_input, to_wire

__all__ = [
    "CONTENT_TYPE",
    "DEFAULT_MAX_CONCURRENT_JOBS",
    "DEFAULT_PORT",
    "MAX_BODY_BYTES",
    "NOT_SIGNATURE_CHECKED",
    "ApiError",
    "ProcessingApi",
    "api_error",
    "checked_input",
    "make_server",
    "serve",
    "to_wire",
]

DEFAULT_PORT = 8080
NOT_SIGNATURE_CHECKED = "requests are not signature-checked"


class _Terminate(Exception):
    """SIGTERM: stop serving, as Ctrl-C does."""


def serve(
    settings: RunSettings,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    max_concurrent_jobs: int = DEFAULT_MAX_CONCURRENT_JOBS,
    out: TextIO = sys.stdout,
    log: TextIO = sys.stderr,
    on_listening: Callable[[str], None] | None = None,
) -> None:
    """Serve until Ctrl-C or SIGTERM. Prints one line on `out` once listening, with the URL
    actually bound (so `--port 0` can be used); everything else goes to `log`. Jobs the server
    started keep running after it stops, each in its own background process. `on_listening`
    gets the URL once requests are answered (`localproc console` opens the browser there)."""
    if max_concurrent_jobs < 1:
        raise ValidationException.single("--max-concurrent-jobs must be at least 1.")
    api = ProcessingApi(settings, max_concurrent_jobs)
    sagemaker_model()  # parse the models now rather than in the first request
    cloudwatch_logs.logs_model()
    try:
        server = make_server(host, port, api, log)
    except OSError as err:
        raise CannotRunHere(f"cannot listen on {host}:{port}: {err.strerror or err}") from None
    bound_host, bound_port = server.server_address[:2]
    shown_host = f"[{bound_host}]" if ":" in bound_host else bound_host
    url = f"http://{shown_host}:{bound_port}"
    if not is_loopback(bound_host):
        server.note(
            f"warning: {bound_host} is not a loopback address: anyone who can reach it can run "
            "containers on this host, and requests are not signature-checked"
        )
    try:
        # The handlers go in before the banner: a client that signals as soon as it has read
        # the URL must get the same clean stop as one that waits.
        with _terminate_on_signals():
            print(
                f"localproc serve: listening on {url} ({NOT_SIGNATURE_CHECKED})",
                file=out,
                flush=True,
            )
            server.note(
                f"jobs are recorded in {settings.state_dir}; at most {max_concurrent_jobs} run "
                "at once. Ctrl-C stops the server; jobs it started keep running "
                "(StopProcessingJob or `localproc stop NAME` stops them)"
            )
            if on_listening is not None:
                on_listening(url)
            server.serve_forever(poll_interval=0.5)
    except (KeyboardInterrupt, _Terminate):
        pass
    finally:
        server.server_close()
    api.pipelines.shut_down(server.note)
    running = api.running_jobs()
    server.note(
        "stopped"
        + (
            f"; still running in the background: {', '.join(running)} (stop them with "
            f"`localproc stop NAME --state-dir {settings.state_dir}`)"
            if running
            else ""
        )
    )


@contextlib.contextmanager
def _terminate_on_signals() -> Iterator[None]:
    """Ctrl-C and SIGTERM end serving. Both are set explicitly: a process started in the
    background by a non-interactive shell inherits SIGINT as ignored, and would never stop."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_terminate(signum: int, _frame: Any) -> None:
        raise _Terminate()

    previous = {
        signum: signal.signal(signum, on_terminate) for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
