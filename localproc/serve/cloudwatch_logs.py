"""The CloudWatch Logs calls clients make for processing jobs, answered from the logs localproc
saves, so that `serve` is also the Logs endpoint: the SageMaker SDK's `Processor.run()` (which
tails the job's streams with DescribeLogStreams and GetLogEvents), `aws logs tail` and
`aws logs filter-log-events` (FilterLogEvents) work against one `AWS_ENDPOINT_URL`.

The log group is `/aws/sagemaker/ProcessingJobs`; each instance of a started job is the stream
`JOB/algo-N-<epoch seconds of ProcessingStartTime>`, as the service names them; its events are
the lines of `<state dir>/jobs/JOB/logs/algo-N.log` (a line of more than MAX_EVENT_BYTES becomes
several events, as the CloudWatch agent splits it; a last line without a newline becomes an event
once the job has ended).

Timestamps: the saved logs carry none per line, so an event's timestamp is the time the file was
last written (its mtime) when the server first reads that line, kept between ProcessingStartTime
and ProcessingEndTime and never below the stream's previous event. A server that watches a
running job (as the SDK's polling does) thus stamps lines to within a poll of when they were
written; lines first read after the job ended all get the time of the file's last write. Once
given, an event's timestamp never changes for the life of the server process, which is what
clients' positions (the SDK's timestamp+skip, `aws logs tail --follow`'s event ids) rely on; a
restarted server may stamp earlier lines differently.

Requests are checked against botocore's `logs` service model, errors are Logs' own
(`InvalidParameterException`, `ResourceNotFoundException`), and tokens are opaque strings whose
forward token comes back unchanged when there is nothing new, as GetLogEvents does.
"""

from __future__ import annotations

import base64
import bisect
import functools
import json
import os
import re
import stat
import threading
import time
import zlib
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import regex

from localproc.errors import LocalprocError, ParameterValidationError, ValidationException
from localproc.records.store import ENDED, JobStore, now
from localproc.service.jobs import describe_job

if TYPE_CHECKING:
    from botocore.model import ServiceModel

GROUP = "/aws/sagemaker/ProcessingJobs"
SERVICE_NAME = "logs"
OPERATIONS = ("DescribeLogStreams", "GetLogEvents", "FilterLogEvents")
# CloudWatch's limits: an event of at most 256 KiB less 26 bytes of overhead; a response of at
# most 1 MiB counting 26 bytes per event, and 10,000 events; 50 streams a page.
EVENT_OVERHEAD = 26
MAX_EVENT_BYTES = 256 * 1024 - EVENT_OVERHEAD
MAX_RESPONSE_BYTES = 1024 * 1024
DEFAULT_EVENT_LIMIT = 10_000
DEFAULT_STREAM_LIMIT = 50
CACHED_STREAMS = 256  # stream indexes kept in memory (least recently used dropped)
# Seconds of `%regex%` matching one FilterLogEvents request may spend in all: a pattern that
# backtracks exponentially is refused rather than run for minutes. The `regex` engine releases
# the GIL while it matches, so other requests are answered meanwhile.
REGEX_BUDGET_SECONDS = 1.5
# What compiling may cost, checked before the engine sees the pattern (compiling a{1000000000}
# alone allocates ~24 GB): a repeat count ({n}, {n,}, {n,m}) of at most MAX_REGEX_REPEAT, and at
# most MAX_REGEX_SIZE atoms once nested repeats are multiplied out; at most MAX_REGEX_CHARS
# characters (the model's bound on filterPattern).
MAX_REGEX_REPEAT = 1000
MAX_REGEX_SIZE = 10_000
MAX_REGEX_CHARS = 1024
_REPEAT = re.compile(r"\{(\d*)(?:(,)(\d*))?\}")
_READ_CHUNK = 4 * 1024 * 1024
_TOKEN = re.compile(r"([fb])/(\d{1,19})")
_INSTANCE_LOG = re.compile(r"algo-(\d+)\.log")


class LogsError(LocalprocError):
    """An error in CloudWatch Logs' own codes."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _invalid(message: str) -> LogsError:
    return LogsError("InvalidParameterException", message)


def _no_group() -> LogsError:
    return LogsError("ResourceNotFoundException", "The specified log group does not exist.")


def _no_stream() -> LogsError:
    return LogsError("ResourceNotFoundException", "The specified log stream does not exist.")


@functools.cache
def logs_model() -> ServiceModel:
    """The CloudWatch Logs ServiceModel botocore ships (with any override in ~/.aws/models)."""
    from botocore.loaders import create_loader
    from botocore.model import ServiceModel

    data = create_loader().load_service_model(SERVICE_NAME, "service-2")
    return ServiceModel(data, service_name=SERVICE_NAME)


def target_prefix() -> str:
    return str(logs_model().metadata["targetPrefix"])


def check_request(operation: str, body: dict[str, Any]) -> None:
    """The model's checks (unknown members, types, min/max, enums, patterns) in the service's
    wording, as InvalidParameterException: CloudWatch Logs' code for all of them."""
    from localproc.payload.validate import _validate_against

    try:
        _validate_against(logs_model().operation_model(operation).input_shape, body, lambda: ())
    except (ParameterValidationError, ValidationException) as err:
        raise _invalid(err.message) from None


# -- one stream's events -------------------------------------------------------------------------
class _StreamIndex:
    """The events of one instance's log file: byte span and timestamp of each, added as the file
    grows. Thread-safe; reading never blocks on the writer."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.inode: int | None = None
        self.indexed = 0  # bytes of the file turned into events
        self.starts = array("q")
        self.ends = array("q")
        self.stamps = array("q")  # milliseconds, never decreasing
        self.ingested = array("q")
        self.lock = threading.Lock()

    def _reset(self, inode: int) -> None:
        self.inode = inode
        self.indexed = 0
        for column in (self.starts, self.ends, self.stamps, self.ingested):
            del column[:]

    def refresh(self, floor_ms: int, ceiling_ms: int | None, ended: bool) -> bool:
        """Index what the file gained; False when it is gone or not a regular file (the job
        deleted, a FIFO, a directory): the stream is then not served."""
        with self.lock:
            try:
                handle = _open_log(self.path)
            except OSError:
                return False
            with handle:
                info = os.fstat(handle.fileno())
                if info.st_ino != self.inode or info.st_size < self.indexed:
                    self._reset(info.st_ino)  # a new file (the job was deleted and run again)
                if info.st_size == self.indexed:
                    return True
                observed = now_ms()
                stamp = min(info.st_mtime_ns // 1_000_000, observed)
                if ceiling_ms is not None:
                    stamp = min(stamp, ceiling_ms)
                stamp = max(stamp, floor_ms, self.stamps[-1] if self.stamps else 0)
                self._index(handle, info.st_size, ended, stamp, max(observed, stamp))
            return True

    def _index(self, handle: Any, size: int, ended: bool, stamp: int, ingested: int) -> None:
        handle.seek(self.indexed)
        position = self.indexed
        pending = b""  # the start of a line not yet ended, from position - len(pending)
        while position < size:
            chunk = handle.read(min(_READ_CHUNK, size - position))
            if not chunk:
                break
            data = pending + chunk
            base = position - len(pending)
            position += len(chunk)
            start = 0
            while True:
                newline = data.find(b"\n", start)
                if newline < 0:
                    break
                self._add_line(data, base, start, newline, stamp, ingested)
                start = newline + 1
            pending = data[start:]
            # An endless line is cut into events as it comes, keeping memory bounded.
            while len(pending) > MAX_EVENT_BYTES:
                cut = _char_boundary(pending, MAX_EVENT_BYTES)
                self._append(base + start, base + start + cut, stamp, ingested)
                start += cut
                pending = pending[cut:]
        self.indexed = position - len(pending)
        if ended and pending:
            self._add_line(pending, self.indexed, 0, len(pending), stamp, ingested)
            self.indexed = position

    def _add_line(
        self, data: bytes, base: int, start: int, end: int, stamp: int, ingested: int
    ) -> None:
        stop = end - 1 if end > start and data[end - 1 : end] == b"\r" else end
        while stop - start > MAX_EVENT_BYTES:
            cut = _char_boundary(data[start : start + MAX_EVENT_BYTES + 4], MAX_EVENT_BYTES)
            self._append(base + start, base + start + cut, stamp, ingested)
            start += cut
        self._append(base + start, base + stop, stamp, ingested)

    def _append(self, start: int, end: int, stamp: int, ingested: int) -> None:
        self.starts.append(start)
        self.ends.append(end)
        self.stamps.append(stamp)
        self.ingested.append(ingested)

    def __len__(self) -> int:
        return len(self.stamps)

    def messages(self, first: int, last: int) -> list[str]:
        """The messages of events first..last-1, read in one go."""
        if first >= last:
            return []
        with self.lock:
            starts, ends = self.starts[first:last], self.ends[first:last]
        origin = starts[0]
        try:
            handle = _open_log(self.path)
        except OSError:
            raise _Vanished from None
        with handle:
            if os.fstat(handle.fileno()).st_ino != self.inode:
                raise _Vanished  # replaced since indexed: these spans are not its lines
            handle.seek(origin)
            data = handle.read(ends[-1] - origin)
        return [
            data[s - origin : e - origin].decode("utf-8", errors="replace")
            for s, e in zip(starts, ends, strict=True)
        ]

    def size_of(self, index: int) -> int:
        return self.ends[index] - self.starts[index] + EVENT_OVERHEAD


class _Vanished(Exception):
    """The stream's file went away (or was replaced) after it was indexed."""


def _open_log(path: Path) -> Any:
    """`path` opened for reading if it is a regular file; OSError otherwise. Never blocks on a
    FIFO and never follows a symbolic link (lstat first, then O_NONBLOCK|O_NOFOLLOW, and the
    opened file checked again)."""
    if not stat.S_ISREG(os.lstat(path).st_mode):
        raise OSError(f"{path} is not a regular file")
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise OSError(f"{path} is not a regular file")
        os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def _char_boundary(data: bytes, limit: int) -> int:
    """The largest cut at or below `limit` that does not split a UTF-8 character."""
    cut = limit
    while cut > limit - 4 and cut < len(data) and (data[cut] & 0xC0) == 0x80:
        cut -= 1
    return cut if cut > limit - 4 else limit


def now_ms() -> int:
    return int(now().timestamp() * 1000)


def _millis(value: Any) -> int | None:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    return int(value.timestamp() * 1000) if isinstance(value, datetime) else None


@dataclass
class _Stream:
    name: str  # JOB/algo-N-EPOCH
    job: str
    instance: int
    path: Path
    created_ms: int
    ended_ms: int | None
    ended: bool
    arn: str


# -- the operations ------------------------------------------------------------------------------
class CloudWatchLogs:
    """DescribeLogStreams, GetLogEvents and FilterLogEvents over one state dir's job logs.
    Shared by the request threads."""

    def __init__(self, store: JobStore, region: str) -> None:
        self.store = store
        self.region = region
        self._indexes: OrderedDict[tuple[str, int], _StreamIndex] = OrderedDict()
        self._lock = threading.Lock()
        self.operations: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "DescribeLogStreams": self.describe_log_streams,
            "GetLogEvents": self.get_log_events,
            "FilterLogEvents": self.filter_log_events,
        }

    def call(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        check_request(operation, body)
        return self.operations[operation](body)

    # -- DescribeLogStreams --
    def describe_log_streams(self, body: dict[str, Any]) -> dict[str, Any]:
        self._check_group(body)
        prefix = body.get("logStreamNamePrefix")
        order = body.get("orderBy", "LogStreamName")
        if order == "LastEventTime" and prefix is not None:
            raise _invalid(
                "Cannot order by LastEventTime with a logStreamNamePrefix: orderBy "
                "LastEventTime lists every stream of the log group."
            )
        streams = self._indexed(self._streams(prefix))
        if order == "LastEventTime":
            streams.sort(key=lambda item: (_last_stamp(item[1]), item[0].name))
        else:
            streams.sort(key=lambda item: item[0].name)
        if body.get("descending"):
            streams.reverse()
        offset = _offset_token(body.get("nextToken"))
        limit = body.get("limit", DEFAULT_STREAM_LIMIT)
        page = streams[offset : offset + limit]
        result: dict[str, Any] = {"logStreams": [_stream_summary(s, i) for s, i in page]}
        if offset + limit < len(streams):
            result["nextToken"] = _encode({"o": offset + limit})
        return result

    # -- GetLogEvents --
    def get_log_events(self, body: dict[str, Any]) -> dict[str, Any]:
        self._check_group(body)
        stream = self._stream(body["logStreamName"])
        index = self._index(stream)
        if index is None:
            raise _no_stream()
        with index.lock:
            stamps = index.stamps[:]
        count = len(stamps)
        low = bisect.bisect_left(stamps, body["startTime"]) if "startTime" in body else 0
        high = bisect.bisect_left(stamps, body["endTime"]) if "endTime" in body else count
        high = max(low, high)
        limit = body.get("limit", DEFAULT_EVENT_LIMIT)
        token = body.get("nextToken")
        if token is not None:
            match = _TOKEN.fullmatch(token)
            if match is None:
                raise _invalid("The specified nextToken is invalid.")
            forward, position = match.group(1) == "f", int(match.group(2))
        else:
            forward = bool(body.get("startFromHead"))
            position = low if forward else high
        if forward:
            first = min(max(position, low), high)
            last = first
            budget = MAX_RESPONSE_BYTES
            while last < high and last - first < limit and budget >= index.size_of(last):
                budget -= index.size_of(last)
                last += 1
        else:
            last = max(min(position, high), low)
            first = last
            budget = MAX_RESPONSE_BYTES
            while first > low and last - first < limit and budget >= index.size_of(first - 1):
                budget -= index.size_of(first - 1)
                first -= 1
        try:
            messages = index.messages(first, last)
        except _Vanished:
            raise _no_stream() from None
        events = [
            {"timestamp": stamps[i], "message": m, "ingestionTime": index.ingested[i]}
            for i, m in zip(range(first, last), messages, strict=True)
        ]
        # Nothing new: the service hands back the token it was given, which is how clients
        # (the SageMaker SDK's loop) know they have read everything for now.
        forward_token = f"f/{last:019d}"
        backward_token = f"b/{first:019d}"
        if not events and token is not None:
            forward_token = token if forward else forward_token
            backward_token = token if not forward else backward_token
        return {
            "events": events,
            "nextForwardToken": forward_token,
            "nextBackwardToken": backward_token,
        }

    # -- FilterLogEvents --
    def filter_log_events(self, body: dict[str, Any]) -> dict[str, Any]:
        self._check_group(body)
        names, prefix = body.get("logStreamNames"), body.get("logStreamNamePrefix")
        if names is not None and prefix is not None:
            raise _invalid(
                "logStreamNames and logStreamNamePrefix are mutually exclusive: give one of them."
            )
        if names is not None:
            wanted = set(names)
            streams = [s for s in self._streams(_common_job_prefix(names)) if s.name in wanted]
        else:
            streams = self._streams(prefix)
        matches = _pattern(body.get("filterPattern", ""))
        start, end = body.get("startTime"), body.get("endTime")
        after = _filter_position(body.get("nextToken"))
        limit = body.get("limit", DEFAULT_EVENT_LIMIT)
        events: list[dict[str, Any]] = []
        budget = MAX_RESPONSE_BYTES
        more = False
        indexed = self._indexed(streams)
        streams = [s for s, _ in indexed]
        for stamp, stream, number, message, ingested in _merged(indexed, start, end, after):
            if not matches(message):
                continue
            size = len(message.encode("utf-8", errors="replace")) + EVENT_OVERHEAD
            if len(events) >= limit or size > budget:
                more = True
                break
            budget -= size
            events.append(
                {
                    "logStreamName": stream.name,
                    "timestamp": stamp,
                    "message": message,
                    "ingestionTime": ingested,
                    "eventId": _event_id(stamp, stream.name, number),
                    "_key": (stamp, stream.name, number),
                }
            )
        result: dict[str, Any] = {
            "events": events,
            "searchedLogStreams": [
                {"logStreamName": s.name, "searchedCompletely": not more} for s in streams
            ],
        }
        if more and events:
            result["nextToken"] = _encode({"k": list(events[-1]["_key"])})
        for event in events:
            del event["_key"]
        return result

    # -- streams --
    def _check_group(self, body: dict[str, Any]) -> None:
        name, identifier = body.get("logGroupName"), body.get("logGroupIdentifier")
        if (name is None) == (identifier is None):
            raise _invalid("Exactly one of logGroupName and logGroupIdentifier must be given.")
        if identifier is not None:
            name = identifier
            if identifier.startswith("arn:"):
                _, _, name = identifier.partition(":log-group:")
                name = name.removesuffix(":*")
        if name != GROUP:
            raise _no_group()

    def _streams(self, prefix: str | None) -> list[_Stream]:
        """The streams whose name starts with `prefix` (all of them without one)."""
        job, slash, _ = (prefix or "").partition("/")
        names = [job] if slash else self.store.names()
        found = []
        for name in names:
            if prefix and not name.startswith(job):
                continue
            for stream in self._job_streams(name):
                if not prefix or stream.name.startswith(prefix):
                    found.append(stream)
        return found

    def _job_streams(self, name: str) -> list[_Stream]:
        try:
            job = describe_job(self.store, name)
        except LocalprocError:  # no such job, a bad name, a damaged record: no streams
            return []
        created = _millis(job.get("ProcessingStartTime"))
        if created is None:
            return []  # not started: the service creates a stream when the container starts
        ended_ms = _millis(job.get("ProcessingEndTime"))
        ended = job.get("ProcessingJobStatus") in ENDED
        arn_parts = str(job.get("ProcessingJobArn", "")).split(":")
        region, account = (
            (arn_parts[3], arn_parts[4]) if len(arn_parts) > 5 else (self.region, "000000000000")
        )
        folder = self.store.job_dir(name) / "logs"
        try:
            logs = sorted(
                (int(m.group(1)), entry)
                for entry in folder.iterdir()
                if (m := _INSTANCE_LOG.fullmatch(entry.name))
            )
        except OSError:
            return []
        epoch = created // 1000
        streams = []
        for instance, path in logs:
            stream_name = f"{name}/algo-{instance}-{epoch}"
            arn = f"arn:aws:logs:{region}:{account}:log-group:{GROUP}:log-stream:{stream_name}"
            streams.append(
                _Stream(stream_name, name, instance, path, created, ended_ms, ended, arn)
            )
        return streams

    def _stream(self, stream_name: str) -> _Stream:
        job, slash, _ = stream_name.partition("/")
        if slash:
            for stream in self._job_streams(job):
                if stream.name == stream_name:
                    return stream
        raise _no_stream()

    def _indexed(self, streams: list[_Stream]) -> list[tuple[_Stream, _StreamIndex]]:
        """`streams` with their indexes, less those whose file is gone or not a file."""
        found = []
        for stream in streams:
            index = self._index(stream)
            if index is not None:
                found.append((stream, index))
        return found

    def _index(self, stream: _Stream) -> _StreamIndex | None:
        key = (str(stream.path), stream.created_ms)
        with self._lock:
            index = self._indexes.get(key)
            if index is None:
                index = self._indexes[key] = _StreamIndex(stream.path)
            self._indexes.move_to_end(key)
            while len(self._indexes) > CACHED_STREAMS:
                self._indexes.popitem(last=False)
        return index if index.refresh(stream.created_ms, stream.ended_ms, stream.ended) else None


def _last_stamp(index: _StreamIndex) -> int:
    return index.stamps[-1] if len(index) else 0


def _stream_summary(stream: _Stream, index: _StreamIndex) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "logStreamName": stream.name,
        "creationTime": stream.created_ms,
        "arn": stream.arn,
        "storedBytes": 0,  # deprecated in the API; the service sends 0
    }
    if len(index):
        summary["firstEventTimestamp"] = index.stamps[0]
        summary["lastEventTimestamp"] = index.stamps[-1]
        summary["lastIngestionTime"] = index.ingested[-1]
    return summary


def _merged(
    streams: list[tuple[_Stream, _StreamIndex]],
    start: int | None,
    end: int | None,
    after: tuple[int, str, int] | None,
) -> Iterator[tuple[int, _Stream, int, str, int]]:
    """Events of all `streams` in (timestamp, stream name, number) order, startTime..endTime
    inclusive, strictly after the `after` key."""
    cursors = []
    for stream, index in streams:
        with index.lock:
            stamps = index.stamps[:]
        first = bisect.bisect_left(stamps, start) if start is not None else 0
        last = bisect.bisect_right(stamps, end) if end is not None else len(stamps)
        if after is not None:
            while first < last and (stamps[first], stream.name, first) <= after:
                first += 1  # events sharing the token's timestamp, up to it
        if first < last:
            cursors.append([stamps, stream, index, first, last])
    batch = 256
    buffers: dict[int, list[str]] = {}
    while cursors:
        best = min(
            range(len(cursors)), key=lambda i: (cursors[i][0][cursors[i][3]], cursors[i][1].name)
        )
        stamps, stream, index, position, last = cursors[best]
        key = id(cursors[best])
        if not buffers.get(key):
            try:
                buffers[key] = index.messages(position, min(position + batch, last))[::-1]
            except _Vanished:  # deleted while read: the rest of it is skipped
                cursors.pop(best)
                continue
        message = buffers[key].pop()
        yield stamps[position], stream, position, message, index.ingested[position]
        cursors[best][3] += 1
        if cursors[best][3] >= last:
            buffers.pop(key, None)
            cursors.pop(best)


def _common_job_prefix(names: list[str]) -> str | None:
    jobs = {name.partition("/")[0] for name in names}
    return f"{jobs.pop()}/" if len(jobs) == 1 else None


def _pattern(text: str) -> Callable[[str], bool]:
    """CloudWatch's filter pattern for unstructured events: terms that must all appear
    (case-sensitive), "quoted phrases", `?term` of which one must appear, `-term` that must
    not; `%regex%`. JSON (`{...}`) and space-delimited (`[...]`) patterns are not served."""
    text = text.strip()
    if not text:
        return lambda message: True
    if text[0] in "{[":
        raise _invalid(
            "filterPattern: JSON ({ ... }) and space-delimited ([ ... ]) patterns are not "
            'supported by localproc serve; use terms, "quoted phrases", ?any, -not or %regex%.'
        )
    if len(text) > 1 and text[0] == text[-1] == "%":
        return _regex_matcher(text[1:-1], REGEX_BUDGET_SECONDS)
    required, anyof, excluded = [], [], []
    for quoted, bare in re.findall(r'([?-]?"[^"]*")|(\S+)', text):
        term = quoted or bare
        kind = term[0] if term[0] in "?-" and len(term) > 1 else ""
        term = term[len(kind) :]
        if len(term) >= 2 and term[0] == term[-1] == '"':
            term = term[1:-1]
        {"": required, "?": anyof, "-": excluded}[kind].append(term)

    def matches(message: str) -> bool:
        return (
            all(t in message for t in required)
            and (not anyof or any(t in message for t in anyof))
            and not any(t in message for t in excluded)
        )

    return matches


def _regex_matcher(source: str, budget: float) -> Callable[[str], bool]:
    """`search` of the expression `source`, for one request: once the matching has taken
    `budget` seconds in all, the request is refused as InvalidParameterException. What the
    pattern would cost to compile is checked first, without compiling it."""
    _check_regex_cost(source)
    try:
        expression = regex.compile(source)
    except (regex.error, ValueError, OverflowError, MemoryError, RecursionError) as err:
        raise _invalid(f"filterPattern: invalid regular expression: {err}") from None
    remaining = budget

    def matches(message: str) -> bool:
        nonlocal remaining
        started = time.monotonic()
        try:
            if remaining <= 0:
                raise TimeoutError
            return expression.search(message, timeout=remaining) is not None
        except TimeoutError:
            raise _invalid(
                "filterPattern: the regular expression is too complex to evaluate (it took more "
                f"than {budget:g} s of matching); simplify it, or narrow the search with "
                "startTime, endTime or the log streams."
            ) from None
        finally:
            remaining -= time.monotonic() - started

    return matches


def _check_regex_cost(source: str) -> None:
    """Refuse, as InvalidParameterException, a pattern whose compiled form could be large: too
    long, a repeat count over MAX_REGEX_REPEAT, or over MAX_REGEX_SIZE atoms with nested repeats
    multiplied out. Conservative (an escape, a class or a group's syntax counts as atoms)."""

    def too_costly(why: str) -> LogsError:
        return _invalid(f"filterPattern: the regular expression is too costly to compile ({why}).")

    if len(source) > MAX_REGEX_CHARS:
        raise too_costly(f"more than {MAX_REGEX_CHARS} characters")
    stack = [[0, 0]]  # per open group: [its size so far, the size of its last atom]

    def atom(size: int) -> None:
        top = stack[-1]
        top[0] += size
        top[1] = size
        if top[0] > MAX_REGEX_SIZE:
            raise too_costly(f"more than {MAX_REGEX_SIZE} elements once repeats are expanded")

    position, length = 0, len(source)
    while position < length:
        char = source[position]
        if char == "\\":
            position += 2
            named = source[position - 1 : position] in ("p", "P", "N", "x", "u", "U", "g", "X")
            if named and source[position : position + 1] == "{":  # \p{L}, \x{41}: no repeat
                close = source.find("}", position)
                position = close + 1 if close >= 0 else position
            atom(1)
        elif char == "[":  # a class: one atom, its braces are no repeats
            position += 1
            if source[position : position + 1] == "^":
                position += 1
            if source[position : position + 1] == "]":
                position += 1
            while position < length and source[position] != "]":
                position += 2 if source[position] == "\\" else 1
            position += 1
            atom(1)
        elif char == "(":
            stack.append([0, 0])
            position += 1
        elif char == ")":
            position += 1
            if len(stack) > 1:
                atom(max(stack.pop()[0], 1))
        elif char in "*+?|":  # repeats that add no copies; alternatives add up
            position += 1
        elif (
            char == "{"
            and (found := _REPEAT.match(source, position))
            and (found.group(1) or found.group(3))
        ):
            counts = [int(g) for g in (found.group(1), found.group(3)) if g]
            count = max(counts)
            if count > MAX_REGEX_REPEAT:
                raise too_costly(f"a repeat count over {MAX_REGEX_REPEAT}")
            top = stack[-1]
            top[0] += top[1] * (count - 1) if count else 0
            top[1] *= max(count, 1)
            if top[0] > MAX_REGEX_SIZE:
                raise too_costly(f"more than {MAX_REGEX_SIZE} elements once repeats are expanded")
            position = found.end()
        else:
            position += 1
            atom(1)


def _event_id(stamp: int, stream: str, number: int) -> str:
    return f"{stamp:016d}{zlib.crc32(stream.encode()):010d}{number:012d}"


def _encode(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


def _decode(token: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, TypeError):
        raise _invalid("The specified nextToken is invalid.") from None


def _offset_token(token: str | None) -> int:
    if token is None:
        return 0
    value = _decode(token)
    offset = value.get("o") if isinstance(value, dict) else None
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise _invalid("The specified nextToken is invalid.")
    return offset


def _filter_position(token: str | None) -> tuple[int, str, int] | None:
    if token is None:
        return None
    value = _decode(token)
    key = value.get("k") if isinstance(value, dict) else None
    if (
        not isinstance(key, list)
        or len(key) != 3
        or not isinstance(key[0], int)
        or not isinstance(key[1], str)
        or not isinstance(key[2], int)
    ):
        raise _invalid("The specified nextToken is invalid.")
    return key[0], key[1], key[2]
