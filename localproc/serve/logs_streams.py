"""The log group's streams: which streams the jobs of the state dir have (one per instance of a
started job, named as the service names them), the check of the group a request names, and the
cache of the streams' indexes (logs_index.py) shared by the request threads."""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from localproc.errors import LocalprocError
from localproc.records.store import ENDED, JobStore
from localproc.serve.logs_index import _StreamIndex
from localproc.serve.logs_protocol import GROUP, _invalid, _no_group, _no_stream
from localproc.service.jobs import describe_job

CACHED_STREAMS = 256  # stream indexes kept in memory (least recently used dropped)
_INSTANCE_LOG = re.compile(r"algo-(\d+)\.log")


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


class LogStreams:
    """The streams of one state dir's jobs, with their indexes (the least recently used dropped
    beyond CACHED_STREAMS). Thread-safe."""

    def __init__(self, store: JobStore, region: str) -> None:
        self.store = store
        self.region = region
        self._indexes: OrderedDict[tuple[str, int], _StreamIndex] = OrderedDict()
        self._lock = threading.Lock()

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
        folder = self.store.folder(name).logs
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


def _common_job_prefix(names: list[str]) -> str | None:
    jobs = {name.partition("/")[0] for name in names}
    return f"{jobs.pop()}/" if len(jobs) == 1 else None
