"""The HTTP side of `localproc serve`: one POST is one operation (`X-Amz-Target`), answered
with a JSON body; `GET /` and `/console/...` are the console's (console.py); every request is
noted once on the server's log."""

from __future__ import annotations

import json
import socket
import sys
import threading
import traceback
import uuid
from typing import Any, TextIO

from localproc.printable import printable, printable_line
from localproc.serve.api import ProcessingApi
from localproc.serve.console import (
    FOREIGN_HOST_MESSAGE,
    PREFIX,
    TOKEN_HEADER,
    Console,
    is_console_path,
    is_loopback,
    write_answer,
)
from localproc.serve.errors import ApiError
from localproc.serve.httpserve import BoundedHTTPServer, OneRequestHandler
from localproc.serve.wire import parse_body, target_prefix

CONTENT_TYPE = "application/x-amz-json-1.1"
MAX_BODY_BYTES = 16 * 1024 * 1024


class _Server(BoundedHTTPServer):
    def __init__(self, address: tuple[str, int], api: ProcessingApi, log: TextIO) -> None:
        self.api = api
        self.log = log
        self.log_lock = threading.Lock()
        self.console: Console | None = None  # set once bound
        self.api_host_checked = False
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
    server = server_class((host, port), api, log)
    server.console = Console(api.store, host)
    # On loopback only local programs reach the API, and they name it by address or localhost;
    # any other Host is a web page that rebound its name to 127.0.0.1 (DNS rebinding), which
    # must not create jobs. Bound elsewhere, clients may name the host anything: not checked.
    server.api_host_checked = is_loopback(str(server.server_address[0]))
    return server


def _host_of(client_address: Any) -> str:
    return str(client_address[0]) if isinstance(client_address, tuple) else str(client_address)


class _Dropped(Exception):
    """The request body never arrived whole: nothing to answer."""


class _Handler(OneRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "localproc"
    server: _Server

    def do_POST(self) -> None:
        if self.path.startswith(PREFIX) and self.server.console is not None:
            host, token = self.headers.get("Host"), self.headers.get(TOKEN_HEADER)
            self._console_answer(lambda console: console.post(self.path, host, token))
            return
        self.request_id = str(uuid.uuid4())
        operation = printable_line(self.headers.get("X-Amz-Target") or "(no X-Amz-Target)")
        try:
            self._check_host()
            raw = self._read_body()
            prefix, operation = self._operation()
            body = parse_body(raw)
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
        if is_console_path(self.path) and self.server.console is not None:
            host = self.headers.get("Host")
            self._console_answer(lambda console: console.get(self.path, host))
            return
        self._refuse()

    def do_PUT(self) -> None:
        self._refuse()

    do_DELETE = do_PATCH = do_PUT

    def _console_answer(self, route: Any) -> None:
        self.request_id = str(uuid.uuid4())
        try:
            answer = route(self.server.console)
        except Exception:  # the HTTP boundary: a bug must not kill the server, nor show itself
            self.close_connection = True
            error = ApiError(
                "InternalFailure",
                f"The console request failed (request id {self.request_id}); the server's log "
                "has the details.",
            )
            self._respond(500, error.body())
            self.server.note(
                f"{self.command} {printable_line(self.path)} 500 InternalFailure:\n"
                + traceback.format_exc()
            )
            return
        write_answer(self, answer)
        if self.command == "POST" or answer.status >= 400:  # not the page's polling
            self.server.note(f"{self.command} {printable_line(self.path)} {answer.status}")

    def _refuse(self) -> None:
        self.close_connection = True
        self.request_id = str(uuid.uuid4())
        error = ApiError(
            "UnknownOperationException",
            f"localproc serve speaks the AWS JSON 1.1 protocol: POST / with "
            f"X-Amz-Target: {target_prefix()}.<Operation>; {self.command} is not served.",
        )
        self._respond(error.status, error.body())
        self.server.note(f"{self.command} {printable_line(self.path)} {error.status}")

    def _check_host(self) -> None:
        console = self.server.console
        host = self.headers.get("Host")
        if self.server.api_host_checked and console and not console.host_allowed(host):
            self.close_connection = True
            raise ApiError("ForeignHost", FOREIGN_HOST_MESSAGE)

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


def _what(operation: str, body: dict[str, Any], result: dict[str, Any]) -> str:
    if operation == "ListProcessingJobs":
        return f"{len(result.get('ProcessingJobSummaries', []))} job(s)"
    if operation == "DescribeLogStreams":
        return f"{len(result.get('logStreams', []))} stream(s)"
    if operation in ("GetLogEvents", "FilterLogEvents"):
        return f"{len(result.get('events', []))} event(s)"
    name = body.get("ProcessingJobName")
    return printable_line(name) if isinstance(name, str) else ""
