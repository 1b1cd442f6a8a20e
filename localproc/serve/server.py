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
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import signal
import socket
import sys
import threading
import traceback
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TextIO

from localproc.errors import (
    CannotRunHere,
    DamagedRecord,
    LocalprocError,
    ParameterValidationError,
    ResourceInUse,
    ResourceLimitExceeded,
    ResourceNotFound,
    ValidationException,
)
from localproc.execution.prepare import RunSettings, job_arn_for, prepare_request
from localproc.payload.service_model import sagemaker_model
from localproc.payload.validate import validate_operation_input, violation
from localproc.printable import printable, printable_line
from localproc.records.listing import ListQuery
from localproc.records.store import RUNNING, JobStore
from localproc.serve import cloudwatch_logs
from localproc.serve.cloudwatch_logs import CloudWatchLogs
from localproc.serve.httpserve import BoundedHTTPServer, OneRequestHandler
from localproc.service.detach import DetachedRunRejected, start_detached
from localproc.service.jobs import delete_job, describe_job, list_jobs, stop_job

if TYPE_CHECKING:
    from botocore.model import Shape

CONTENT_TYPE = "application/x-amz-json-1.1"
MAX_BODY_BYTES = 16 * 1024 * 1024
DEFAULT_PORT = 8080
DEFAULT_MAX_CONCURRENT_JOBS = 4
# Deeper JSON than any request shape of the served APIs has (theirs are under 10 levels): refused
# before the parser or the validator's recursion meet it.
MAX_JSON_DEPTH = 64
NOT_SIGNATURE_CHECKED = "requests are not signature-checked"
SERVICE_CODES = frozenset(
    {"ValidationException", "ResourceInUse", "ResourceNotFound", "ResourceLimitExceeded"}
)


class ApiError(Exception):
    """An error response: HTTP status and the body botocore parses (`__type`, `message`)."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status

    def body(self) -> dict[str, Any]:
        return {"__type": self.code, "message": self.message}


def api_error(err: LocalprocError) -> ApiError:
    """A library error as the service sends it."""
    if isinstance(err, DetachedRunRejected):
        return _rejected_run(err)
    if isinstance(err, ParameterValidationError):
        # botocore checks these before sending; a raw request reaches the service, which says
        # ValidationException.
        return ApiError("ValidationException", err.message)
    if isinstance(err, DamagedRecord):
        # The library's message tells a CLI user what to type and where the file is; an API
        # client gets the API's words.
        return ApiError(
            err.code,
            f"The record of processing job {err.name} is damaged: {err.problem}. It cannot be "
            "described or stopped; DeleteProcessingJob removes it and frees the name.",
        )
    return ApiError(err.code, err.message)


def _rejected_run(err: DetachedRunRejected) -> ApiError:
    """The background run refused the job before recording it. Its own code is kept when it is
    one of the service's (e.g. ResourceInUse when two requests race for one name); anything the
    host lacks (no Docker engine, image missing and not pullable, S3 unreachable, a feature this
    version cannot run) is `CannotRunHere`, localproc's own code for it."""
    code = "ValidationException" if err.code == "ParamValidationError" else err.code
    return ApiError(code if code in SERVICE_CODES else CannotRunHere.code, err.message)


# -- the operations ------------------------------------------------------------------------------
class ProcessingApi:
    """The served operations over one state dir. Shared by the request threads."""

    def __init__(
        self,
        settings: RunSettings,
        max_concurrent_jobs: int = DEFAULT_MAX_CONCURRENT_JOBS,
        start: Callable[[dict[str, Any], RunSettings], str] = start_detached,
    ) -> None:
        self.settings = settings
        self.store = JobStore(settings.state_dir)
        self.max_concurrent_jobs = max_concurrent_jobs
        self._start = start
        self._lock = threading.RLock()
        self._created: set[str] = set()  # the jobs this server started
        self._starting = 0  # creates between their slot check and their record
        self.operations: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "CreateProcessingJob": self.create,
            "DescribeProcessingJob": self.describe,
            "ListProcessingJobs": self.list,
            "StopProcessingJob": self.stop,
            "DeleteProcessingJob": self.delete,
        }
        self.logs = CloudWatchLogs(self.store, settings.region or "us-east-1")
        # X-Amz-Target prefix -> the operations served under it
        self.services = {
            _target_prefix(): self.operations,
            cloudwatch_logs.target_prefix(): self.logs.operations,
        }

    def dispatch(self, prefix: str, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        """Run `prefix.operation` (a SageMaker or a CloudWatch Logs one)."""
        if prefix == cloudwatch_logs.target_prefix():
            try:
                return self.logs.call(operation, body)
            except LocalprocError as err:
                raise api_error(err) from err
        return self.call(operation, body)

    def call(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        """Run one operation; the result in wire form (timestamps as epoch seconds)."""
        model = sagemaker_model().operation_model(operation)
        try:
            result = self.operations[operation](body)
        except LocalprocError as err:
            raise api_error(err) from err
        return to_wire(result, model.output_shape) if model.output_shape is not None else {}

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        request = prepare_request(body)
        with self._job_slot():
            try:
                arn = self._start(request, self.settings)
            except LocalprocError as err:
                if err.code != ResourceInUse.code:
                    raise
                # The library's message also tells a CLI user what to type; an API client
                # gets the service's own words.
                raise ResourceInUse(
                    "Job name must be unique within an AWS account and region, and a job with "
                    f"this name already exists ({job_arn_for(request, self.settings)})"
                ) from None
            with self._lock:
                self._created.add(request["ProcessingJobName"])
        return {"ProcessingJobArn": arn}

    def describe(self, body: dict[str, Any]) -> dict[str, Any]:
        name = checked_input("DescribeProcessingJob", body)["ProcessingJobName"]
        return describe_job(self.store, name)

    def list(self, body: dict[str, Any]) -> dict[str, Any]:
        given = checked_input("ListProcessingJobs", body)
        query = ListQuery(
            creation_time_after=given.get("CreationTimeAfter"),
            creation_time_before=given.get("CreationTimeBefore"),
            last_modified_time_after=given.get("LastModifiedTimeAfter"),
            last_modified_time_before=given.get("LastModifiedTimeBefore"),
            name_contains=given.get("NameContains"),
            status_equals=given.get("StatusEquals"),
            sort_by=given.get("SortBy", "CreationTime"),
            # The API's documented default; `localproc list` shows the newest first instead.
            sort_order=given.get("SortOrder", "Ascending"),
            max_results=given.get("MaxResults"),
            next_token=given.get("NextToken") or None,
        )
        return list_jobs(self.store, query)

    def stop(self, body: dict[str, Any]) -> dict[str, Any]:
        stop_job(self.store, checked_input("StopProcessingJob", body)["ProcessingJobName"])
        return {}

    def delete(self, body: dict[str, Any]) -> dict[str, Any]:
        name = checked_input("DeleteProcessingJob", body)["ProcessingJobName"]
        try:
            delete_job(self.store, name)
        except ResourceInUse:
            status = describe_job(self.store, name).get("ProcessingJobStatus")
            raise ResourceInUse(
                f"Processing job {name} is {status}; only a job that has ended (Completed, "
                "Failed or Stopped) can be deleted. Stop it with StopProcessingJob and wait for "
                "it to end."
            ) from None
        with self._lock:
            self._created.discard(name)
        return {}

    def running_jobs(self) -> list[str]:
        """The jobs this server started that are still InProgress or Stopping. A job whose
        record is damaged is not among them: nothing says it runs, and it must not keep other
        jobs from starting."""
        running = []
        with self._lock:
            for name in sorted(self._created):
                try:
                    status = describe_job(self.store, name)["ProcessingJobStatus"]
                except ResourceNotFound:  # deleted by `localproc delete`
                    self._created.discard(name)
                    continue
                except DamagedRecord:
                    continue
                if status in RUNNING:
                    running.append(name)
        return running

    @contextlib.contextmanager
    def _job_slot(self) -> Iterator[None]:
        """Hold one of the --max-concurrent-jobs slots while the job is being started; a
        started job then counts for as long as its record says it runs."""
        with self._lock:
            running = self.running_jobs()
            busy = len(running) + self._starting
            if busy >= self.max_concurrent_jobs:
                raise ResourceLimitExceeded(
                    "The limit of concurrent processing jobs of this localproc serve is "
                    f"{self.max_concurrent_jobs}, with current utilization of {busy} "
                    f"({', '.join(running) or 'jobs being started'}). Wait for a job to end, "
                    "stop one with StopProcessingJob, or restart the server with a higher "
                    "--max-concurrent-jobs."
                )
            self._starting += 1
        try:
            yield
        finally:
            with self._lock:
                self._starting -= 1


# -- request members -----------------------------------------------------------------------------
def checked_input(operation: str, body: dict[str, Any]) -> dict[str, Any]:
    """The request of a Describe/List/Stop/Delete operation, checked against the operation's
    input shape by the same validator as CreateProcessingJob; timestamp members become
    datetimes."""
    validate_operation_input(operation, body)
    members = sagemaker_model().operation_model(operation).input_shape.members
    result: dict[str, Any] = {}
    for key, value in body.items():
        if value is not None and members[key].type_name == "timestamp":
            moment = _request_time(value)
            if moment is None:
                field = key[:1].lower() + key[1:]
                raise ValidationException(
                    [violation(value, field, "Member must be a time: epoch seconds or ISO 8601")]
                )
            value = moment
        result[key] = value
    return result


def _request_time(value: Any) -> datetime | None:
    """botocore sends timestamps as epoch seconds; people writing JSON by hand use ISO 8601."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return _iso_time(value)
    try:
        return datetime.fromtimestamp(value, timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def _iso_time(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


# -- responses -----------------------------------------------------------------------------------
def to_wire(value: Any, shape: Shape) -> Any:
    """`value` with every timestamp member of `shape` (at any depth) as epoch seconds, the form
    the service sends and botocore parses. Records keep timestamps as ISO 8601 strings."""
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        members = shape.members
        return {k: to_wire(v, members[k]) if k in members else v for k, v in value.items()}
    if kind == "list" and isinstance(value, list):
        return [to_wire(item, shape.member) for item in value]
    if kind == "map" and isinstance(value, dict):
        return {k: to_wire(v, shape.value) for k, v in value.items()}
    if kind == "timestamp":
        moment = _iso_time(value) if isinstance(value, str) else value
        if isinstance(moment, datetime):
            return round(moment.timestamp(), 3)
    return value


# -- HTTP ----------------------------------------------------------------------------------------
class _Server(BoundedHTTPServer):
    def __init__(self, address: tuple[str, int], api: ProcessingApi, log: TextIO) -> None:
        self.api = api
        self.log = log
        self.log_lock = threading.Lock()
        super().__init__(address, _Handler, MAX_BODY_BYTES)

    def note(self, line: str) -> None:
        """Print one note on the server's log. Requests' headers, paths and bodies reach it, so
        it goes out through `printable`: a control sequence shows as `\\x1b`, never acts on the
        terminal (newlines stay, for a traceback)."""
        with self.log_lock:
            print(printable(f"localproc serve: {line}"), file=self.log, flush=True)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A connection that broke (client gone while we answered): one line, not a traceback.
        self.note(f"connection from {_host_of(client_address)} failed: {sys.exc_info()[1]!r}")

    def note_dropped(self, client_address: Any, detail: str) -> None:
        self.note(f"request dropped ({_host_of(client_address)}): {detail}")


class _Server6(_Server):
    address_family = socket.AF_INET6


def make_server(host: str, port: int, api: ProcessingApi, log: TextIO) -> _Server:
    """The HTTP server for `api`, bound and listening, not yet serving."""
    server_class = _Server6 if ":" in host else _Server
    return server_class((host, port), api, log)


def _host_of(client_address: Any) -> str:
    return str(client_address[0]) if isinstance(client_address, tuple) else str(client_address)


class _Dropped(Exception):
    """The request body never arrived whole: nothing to answer."""


class _Handler(OneRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "localproc"
    server: _Server

    def do_POST(self) -> None:
        self.request_id = str(uuid.uuid4())
        operation = printable_line(self.headers.get("X-Amz-Target") or "(no X-Amz-Target)")
        try:
            raw = self._read_body()
            prefix, operation = self._operation()
            body = _parse_body(raw)
            status, payload = 200, self.server.api.dispatch(prefix, operation, body)
            outcome = _what(operation, body, payload)
        except _Dropped as err:
            self.server.note(f"{operation}: request dropped: {err}")
            return
        except ApiError as err:
            status, payload = err.status, err.body()
            outcome = f"{err.code}: " + " ".join(err.message.split())
        except Exception:  # the HTTP boundary: a bug must not kill the server, nor show itself
            status = 500
            payload = {
                "__type": "InternalFailure",
                "message": "The request failed inside localproc serve (request id "
                f"{self.request_id}); the server's log has the details.",
            }
            outcome = f"InternalFailure (request id {self.request_id}):\n" + (
                traceback.format_exc()
            )
        self._respond(status, payload)
        self.server.note(f"{operation} {status} {outcome}".rstrip())

    def do_GET(self) -> None:
        self._refuse()

    do_PUT = do_DELETE = do_PATCH = do_GET

    def _refuse(self) -> None:
        self.close_connection = True
        self.request_id = str(uuid.uuid4())
        error = ApiError(
            "UnknownOperationException",
            f"localproc serve speaks the AWS JSON 1.1 protocol: POST / with "
            f"X-Amz-Target: {_target_prefix()}.<Operation>; {self.command} is not served.",
        )
        self._respond(error.status, error.body())
        self.server.note(f"{self.command} {printable_line(self.path)} {error.status}")

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            raise ApiError("SerializationException", "Chunked request bodies are not supported.")
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self.close_connection = True
            raise ApiError(
                "SerializationException",
                f"Content-Length must be a number of bytes up to {MAX_BODY_BYTES}.",
            )
        raw = self.rfile.read(length)  # read whole before the handler was called
        if len(raw) < length:
            self.close_connection = True
            raise _Dropped(f"the body ended after {len(raw)} of {length} bytes")
        return raw

    def _operation(self) -> tuple[str, str]:
        target = self.headers.get("X-Amz-Target", "")
        prefix, _, operation = target.partition(".")
        services = self.server.api.services
        if operation not in services.get(prefix, {}):
            served = "; ".join(
                f"{name}.{{{', '.join(operations)}}}" for name, operations in services.items()
            )
            raise ApiError(
                "UnknownOperationException",
                f"Operation '{target}' is not served by localproc serve; it serves {served}.",
            )
        return prefix, operation

    def _respond(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", getattr(self, "request_id", str(uuid.uuid4())))
        self.end_headers()
        self.wfile.write(data)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # each request is noted once, with its operation, by do_POST

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        # http.server's own messages (malformed requests).
        self.server.note(format % args)


def _target_prefix() -> str:
    return str(sagemaker_model().metadata["targetPrefix"])


def _parse_body(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except RecursionError:
        raise _too_deep() from None
    except (UnicodeDecodeError, ValueError) as err:
        # e.g. an integer of more than 4,300 digits: Python's int() limit, met by the parser
        raise ApiError("SerializationException", f"The request body is not JSON: {err}") from None
    if not isinstance(body, dict):
        raise ApiError("SerializationException", "The request body must be a JSON object.")
    if _depth_exceeds(body, MAX_JSON_DEPTH):
        raise _too_deep()
    return body


def _too_deep() -> ApiError:
    return ApiError(
        "SerializationException",
        f"The request body nests JSON arrays or objects more than {MAX_JSON_DEPTH} levels deep.",
    )


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether `value` nests containers more than `limit` deep (walked without recursion)."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        pending.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return False


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _what(operation: str, body: dict[str, Any], result: dict[str, Any]) -> str:
    if operation == "ListProcessingJobs":
        return f"{len(result.get('ProcessingJobSummaries', []))} job(s)"
    if operation == "DescribeLogStreams":
        return f"{len(result.get('logStreams', []))} stream(s)"
    if operation in ("GetLogEvents", "FilterLogEvents"):
        return f"{len(result.get('events', []))} event(s)"
    name = body.get("ProcessingJobName")
    return printable_line(name) if isinstance(name, str) else ""


# -- running -------------------------------------------------------------------------------------
class _Terminate(Exception):
    """SIGTERM: stop serving, as Ctrl-C does."""


def serve(
    settings: RunSettings,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    max_concurrent_jobs: int = DEFAULT_MAX_CONCURRENT_JOBS,
    out: TextIO = sys.stdout,
    log: TextIO = sys.stderr,
) -> None:
    """Serve until Ctrl-C or SIGTERM. Prints one line on `out` once listening, with the URL
    actually bound (so `--port 0` can be used); everything else goes to `log`. Jobs the server
    started keep running after it stops, each in its own background process."""
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
    if not _is_loopback(bound_host):
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
            server.serve_forever(poll_interval=0.5)
    except (KeyboardInterrupt, _Terminate):
        pass
    finally:
        server.server_close()
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


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


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
