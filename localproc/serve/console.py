"""The console in the browser: `GET /` and `/console/...` on serve's own port, beside the AWS
JSON API (which stays on `POST /`). The page and its script ship in console_static/ (no build
step, nothing fetched from elsewhere); what it shows is service.console's.

Safety, because a web page anywhere can make the browser send requests here:
- Host: every console request must name this server by an IP address or `localhost` (or the
  name given to --host) and its port, or it is refused: a DNS rebinding page (an attacker's name
  that resolves to 127.0.0.1) sends its own name, so it can neither read nor act.
- CSRF: a request that changes anything (stop, delete) is a POST that carries the token the
  page got from this server (in the page itself) in a header; other pages cannot read the page
  to learn it, and a custom header cannot be sent cross-origin without a preflight, which is
  never granted. Compared in constant time.
- Downloads never leave the job's folder and never follow a link (service.console_files).
- The page is sent with a Content-Security-Policy that allows only its own script and style.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import json
import re
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from localproc.errors import LocalprocError, ValidationException
from localproc.records.store import JobStore
from localproc.service import console as views
from localproc.service.jobs import delete_job, list_query, stop_job

STATIC = Path(__file__).with_name("console_static")
STATIC_TYPES = {"console.js": "text/javascript", "console.css": "text/css"}
TOKEN_HEADER = "X-Localproc-Console-Token"
TOKEN_PLACEHOLDER = "__CONSOLE_TOKEN__"
PREFIX = "/console/"
FOREIGN_HOST_MESSAGE = (
    "The Host header does not name this server (by an IP address or localhost): refused, so "
    "that a web page served under another name cannot reach it (DNS rebinding)."
)
_STATUS_OF = {"ValidationException": 400, "ResourceNotFound": 404, "ResourceInUse": 409}
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'none'",
    "X-Frame-Options": "DENY",
}
_COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
DOWNLOAD_CHUNK = 64 * 1024
# A Host header: a name or IPv4 address, or an IPv6 address in brackets, and a port. Nothing
# else (no user info, no path): what does not match is refused.
_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::([0-9]{1,5}))?")


class Answer:
    """What a console request is answered with: a status, a type, a body (bytes, or an open
    file of `length` bytes streamed out), extra headers."""

    def __init__(
        self,
        status: int,
        content_type: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        stream: Any = None,
        length: int | None = None,
    ) -> None:
        self.status, self.content_type, self.body = status, content_type, body
        self.headers = {**_COMMON_HEADERS, **(headers or {})}
        self.stream, self.length = stream, length


def json_answer(status: int, value: Any) -> Answer:
    return Answer(status, "application/json", json.dumps(value).encode())


def error_answer(status: int, code: str, message: str) -> Answer:
    return json_answer(status, {"__type": code, "message": message})


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def is_console_path(path: str) -> bool:
    return path == "/" or path.startswith(PREFIX) or path.startswith("/?")


class Console:
    """The console's routes over one state dir, for a server bound to `served_host`."""

    def __init__(self, store: JobStore, served_host: str) -> None:
        self.store = store
        self.token = secrets.token_urlsafe(32)
        self._served_host = served_host.lower().strip("[]")
        page = (STATIC / "index.html").read_text()
        self._page = page.replace(TOKEN_PLACEHOLDER, self.token).encode()
        self._static = {name: (STATIC / name).read_bytes() for name in STATIC_TYPES}

    # -- the two guards --------------------------------------------------------------------
    def host_allowed(self, host_header: str | None) -> bool:
        """Whether the Host header names this server: by an IP address, `localhost`, or the
        name it was told to bind. A DNS rebinding page sends its own name, which never passes.
        The port is not compared: it says nothing about who names the server, and an SSH
        tunnel (`ssh -L 9000:127.0.0.1:8080`) legitimately changes it."""
        found = _HOST.fullmatch((host_header or "").strip())
        if found is None:
            return False
        name = found.group(1).lower().strip("[]")
        if name in ("localhost", self._served_host):
            return True
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return False
        return True

    def token_valid(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())

    # -- requests --------------------------------------------------------------------------
    def get(self, path: str, host: str | None) -> Answer:
        if not self.host_allowed(host):
            return _foreign_host()
        url = urlsplit(path)
        parts = [unquote(p) for p in url.path.split("/") if p]
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        try:
            return self._get(url.path, parts, query)
        except LocalprocError as err:
            return _error(err)

    def _get(self, raw_path: str, parts: list[str], query: dict[str, str]) -> Answer:
        if raw_path == "/":
            return Answer(200, "text/html; charset=utf-8", self._page, _PAGE_HEADERS)
        if parts[:2] == ["console", "static"] and len(parts) == 3 and parts[2] in self._static:
            return Answer(200, STATIC_TYPES[parts[2]], self._static[parts[2]])
        if parts[:3] == ["console", "api", "jobs"]:
            rest = parts[3:]
            if not rest:
                return json_answer(200, views.jobs_table(self.store, _list_query(query)))
            name = rest[0]
            if len(rest) == 1:
                return json_answer(200, views.job_page(self.store, name))
            if rest[1] == "logs" and len(rest) == 3:
                offset = _int(query.get("offset", "0"), "offset")
                return json_answer(200, views.log_piece(self.store, name, rest[2], offset))
            if rest[1] == "files" and len(rest) >= 5:
                host, output, relative = rest[2], rest[3], "/".join(rest[4:])
                handle, size = views.open_output_file(self.store, name, host, output, relative)
                return Answer(
                    200,
                    "application/octet-stream",
                    headers={"Content-Disposition": attachment(rest[-1])},
                    stream=handle,
                    length=size,
                )
        return error_answer(404, "NotFound", "Nothing is served at this path.")

    def post(self, path: str, host: str | None, token: str | None) -> Answer:
        """Stop or delete a job: only with this server's token (CSRF) and Host."""
        if not self.host_allowed(host):
            return _foreign_host()
        if not self.token_valid(token):
            return error_answer(
                403,
                "AccessDeniedException",
                f"This request changes a job and needs the console's token in {TOKEN_HEADER}; "
                "reload the console page to get it.",
            )
        parts = [unquote(p) for p in urlsplit(path).path.split("/") if p]
        if parts[:3] != ["console", "api", "jobs"] or len(parts) != 5:
            return error_answer(404, "NotFound", "Nothing is served at this path.")
        name, action = parts[3], parts[4]
        try:
            if action == "stop":
                stop_job(self.store, name)
                return json_answer(200, {"Stopping": name})
            if action == "delete":
                delete_job(self.store, name)
                return json_answer(200, {"Deleted": name})
        except LocalprocError as err:
            return _error(err)
        return error_answer(404, "NotFound", f"No action {action!r}: stop or delete.")


def write_answer(handler: Any, answer: Answer) -> None:
    """Send `answer` through a BaseHTTPRequestHandler; a file is streamed in chunks and closed."""
    try:
        handler.send_response(answer.status)
        handler.send_header("Content-Type", answer.content_type)
        length = answer.length if answer.stream is not None else len(answer.body)
        handler.send_header("Content-Length", str(length))
        for key, value in answer.headers.items():
            handler.send_header(key, value)
        handler.end_headers()
        if answer.stream is None:
            handler.wfile.write(answer.body)
            return
        remaining = answer.length or 0
        while remaining > 0:
            chunk = answer.stream.read(min(DOWNLOAD_CHUNK, remaining))
            if not chunk:  # the file shrank while sent: the connection cannot carry more
                handler.close_connection = True
                return
            handler.wfile.write(chunk)
            remaining -= len(chunk)
    finally:
        if answer.stream is not None:
            with contextlib.suppress(OSError):
                answer.stream.close()


def attachment(name: str) -> str:
    """Content-Disposition for a file a container named: the name is the container's, so it
    may hold quotes, CR/LF or anything else; only safe ASCII goes in plain, the rest
    percent-encoded (RFC 6266 / 5987), so no header can be forged through a file name."""
    plain = re.sub(r"[^A-Za-z0-9._-]", "_", name) or "download"
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(name, safe='')}"


def _list_query(query: dict[str, str]) -> Any:
    members: dict[str, Any] = {"MaxResults": views.MAX_TABLE_ROWS, "SortOrder": "Descending"}
    if query.get("status"):
        members["StatusEquals"] = query["status"]
    if query.get("name"):
        members["NameContains"] = query["name"]
    for key, member in (("after", "CreationTimeAfter"), ("before", "CreationTimeBefore")):
        if query.get(key):
            members[member] = datetime.fromtimestamp(_float(query[key], key), timezone.utc)
    if query.get("next"):
        members["NextToken"] = query["next"]
    return list_query(members, sort_order="Descending")


def _int(text: str, name: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValidationException.single(f"{name} must be a whole number.") from None


def _float(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValidationException.single(f"{name} must be a time in epoch seconds.") from None
    if not -1e11 < value < 1e11:
        raise ValidationException.single(f"{name} must be a time in epoch seconds.")
    return value


def _error(err: LocalprocError) -> Answer:
    return error_answer(_STATUS_OF.get(err.code, 400), err.code, str(err))


def _foreign_host() -> Answer:
    return error_answer(
        400,
        "ForeignHost",
        FOREIGN_HOST_MESSAGE,
    )
