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

This module holds the three operations and the paging of events; logs_protocol.py the model,
the errors and the tokens, logs_streams.py which streams there are, logs_index.py one stream's
events, logs_filter.py filter patterns.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator
from typing import Any

import regex

from localproc.records.store import JobStore
from localproc.serve.logs_filter import _pattern, _regex_matcher
from localproc.serve.logs_index import (
    EVENT_OVERHEAD,
    MAX_EVENT_BYTES,
    _StreamIndex,
    _Vanished,
    now_ms,
)
from localproc.serve.logs_protocol import (
    _TOKEN,
    GROUP,
    SERVICE_NAME,
    LogsError,
    _encode,
    _event_id,
    _filter_position,
    _invalid,
    _no_stream,
    _offset_token,
    check_request,
    logs_model,
    target_prefix,
)
from localproc.serve.logs_streams import (
    LogStreams,
    _common_job_prefix,
    _last_stamp,
    _Stream,
    _stream_summary,
)

# What other modules and the tests use from here; the parts live in logs_protocol (model, errors,
# tokens), logs_index (one stream's events), logs_streams (the group's streams) and logs_filter
# (filter patterns). The tests reach `_regex_matcher` and the `regex` module (to patch its
# compile) through this module.
__all__ = [
    "_regex_matcher",
    "regex",
    "EVENT_OVERHEAD",
    "GROUP",
    "MAX_EVENT_BYTES",
    "SERVICE_NAME",
    "CloudWatchLogs",
    "LogsError",
    "check_request",
    "logs_model",
    "now_ms",
    "target_prefix",
]

OPERATIONS = ("DescribeLogStreams", "GetLogEvents", "FilterLogEvents")
# CloudWatch's limits: a response of at most 1 MiB counting 26 bytes per event, and 10,000
# events; 50 streams a page.
MAX_RESPONSE_BYTES = 1024 * 1024
DEFAULT_EVENT_LIMIT = 10_000
DEFAULT_STREAM_LIMIT = 50


# -- the operations ------------------------------------------------------------------------------
class CloudWatchLogs(LogStreams):
    """DescribeLogStreams, GetLogEvents and FilterLogEvents over one state dir's job logs (the
    streams and their indexes come from LogStreams). Shared by the request threads."""

    def __init__(self, store: JobStore, region: str) -> None:
        super().__init__(store, region)
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
