"""Watching the output folders for ContinuousUploader (continuous.py): watchdog's inotify
observer, the polling observer where inotify is not available or has died, and the
process-wide hook that notices watchdog's threads dying. Events only name a file to look at
(continuous_scheduler.py decides when it is complete)."""

from __future__ import annotations

import errno
import os
import threading
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from watchdog.events import FileSystemEvent
    from watchdog.observers.api import BaseObserver

    from localproc.transfer.continuous import ContinuousUploader

# The polling observer's interval when inotify is unavailable.
POLL_SECONDS = 1.0


class _Watching:
    """The watching part of ContinuousUploader: its observers (`_observers`) and the failures
    of watchdog's threads (`_watcher_failure`), under the uploader's lock."""

    def _watch(self) -> None:
        from watchdog.events import (
            FileClosedEvent,
            FileCreatedEvent,
            FileModifiedEvent,
            FileMovedEvent,
        )
        from watchdog.utils import UnsupportedLibcError

        # watchdog's inotify code warns when a folder created by `mkdir -p` is watched twice (the
        # second watch replaces the first, which is what we want); that would only be noise on
        # the user's terminal.
        warnings.filterwarnings(
            "ignore",
            message="Callback with id .* already exists for watch",
            category=RuntimeWarning,
            module="watchdog",
        )
        # Only what can make a file complete or changed: no IN_OPEN/IN_CLOSE_NOWRITE, so our own
        # snapshot reads do not come back to us as events.
        event_filter = [FileCreatedEvent, FileModifiedEvent, FileClosedEvent, FileMovedEvent]
        inotify: BaseObserver | None = None
        if self._use_inotify:
            try:
                from watchdog.observers.inotify import InotifyObserver

                inotify = InotifyObserver()
                inotify.start()
                self._observers.append(inotify)
            except (ImportError, OSError, UnsupportedLibcError) as err:
                self._warn(
                    f"inotify is not available ({err}); watching output folders by polling "
                    f"every {POLL_SECONDS:g} s instead"
                )
                inotify = None
        polling: BaseObserver | None = None
        for index, target in enumerate(self._targets):
            handler = _make_handler(self, index)
            if inotify is not None:
                try:
                    inotify.schedule(
                        handler, str(target.folder), recursive=True, event_filter=event_filter
                    )
                    continue
                except OSError as err:
                    self._warn(
                        f"cannot watch {target.folder} with inotify ({_describe_os_error(err)}); "
                        f"polling it every {POLL_SECONDS:g} s instead"
                    )
            if polling is None:
                from watchdog.observers.polling import PollingObserverVFS

                # lstat, not stat: the plain polling observer would walk into symlinked folders.
                polling = PollingObserverVFS(os.lstat, os.scandir, polling_interval=POLL_SECONDS)
                polling.start()
                self._observers.append(polling)
            polling.schedule(handler, str(target.folder), recursive=True, event_filter=event_filter)

    def _stop_observers(self, observers: Sequence[BaseObserver]) -> None:
        """Stop them; watchdog's inotify code can fail while stopping (the race that kills its
        thread): what is lost is only events, which the final pass and the sweep make up for."""
        for observer in observers:
            try:
                observer.stop()
                observer.join()
            except Exception as err:  # a bug of the watcher library, not of this job
                self._warn(f"the output file watcher failed while stopping ({err!r}); ignored")

    def watcher_died(self, description: str) -> None:
        """Called (from the dying thread) when one of watchdog's threads ends with an error."""
        with self._cond:
            if self._watcher_failure is None:
                self._watcher_failure = description
            self._cond.notify_all()

    def _watch_by_polling(self, failure: str) -> None:
        """Replace every observer with a new polling one: after inotify's reader died, and
        again should a polling thread die (a folder vanishing mid-walk): polling keeps no
        state that a race could corrupt, so a new one simply starts over."""
        from watchdog.observers.polling import PollingObserverVFS

        with self._cond:
            if self._stopping:
                return
            self._watcher_failures_seen += 1
            first = self._watcher_failures_seen == 1
        if first:
            self._warn(
                f"the watcher of the output folders failed ({failure}); watching them by "
                f"polling every {POLL_SECONDS:g} s instead"
            )
        dead, self._observers = self._observers, []
        self._stop_observers(dead)
        _forget_dead_inotify_reader()
        polling = PollingObserverVFS(os.lstat, os.scandir, polling_interval=POLL_SECONDS)
        for index, target in enumerate(self._targets):
            polling.schedule(_make_handler(self, index), str(target.folder), recursive=True)
        polling.start()
        with self._cond:
            if self._stopping:  # finish() came meanwhile and has stopped the others
                polling.stop()
                return
            self._observers.append(polling)
        self._sweep()  # what changed while nothing watched

    def _stopped_watcher(self) -> str | None:
        """A watcher that stopped without an error: watchdog's polling emitter stops itself when
        a sub-folder vanishes in the middle of its walk (it takes that for the watched folder
        being deleted), and reports nothing."""
        with self._cond:
            observers = list(self._observers)
        for observer in observers:
            if not observer.is_alive() or any(not e.is_alive() for e in observer.emitters):
                return f"its {type(observer).__name__} stopped"
        return None

    def _on_event(self, index: int, event: FileSystemEvent) -> None:
        """Called on watchdog's dispatch thread, which must never see an exception."""
        kind = event.event_type
        if event.is_directory and kind not in ("created", "moved"):
            # watchdog reports the files of a new or moved-in folder as file events of their own.
            return
        # A folder's event is looked at too: the polling observer matches entries by inode, so
        # a new file that got the inode of a folder deleted meanwhile comes as that folder
        # "moved" to the file's name. What the path is now is decided by lstat in _evaluate.
        path = event.dest_path if kind == "moved" else event.src_path
        relative = _relative(self._targets[index].folder, os.fsdecode(path))
        if relative is None:
            return
        # A rename into place is how careful writers publish a complete file.
        self._changed((index, relative), closed=kind in ("closed", "moved"))


class _WatcherFailures:
    """One `threading.excepthook` for the process, installed while an uploader watches with
    inotify: an exception that ends one of watchdog's threads goes to the uploaders (as one
    line each), every other to the hook there was before."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._uploaders: set[ContinuousUploader] = set()
        self._previous: Callable[[threading.ExceptHookArgs], Any] | None = None

    def subscribe(self, uploader: ContinuousUploader) -> None:
        with self._lock:
            if not self._uploaders:
                self._previous = threading.excepthook
                threading.excepthook = self._hook
            self._uploaders.add(uploader)

    def unsubscribe(self, uploader: ContinuousUploader) -> None:
        with self._lock:
            if uploader not in self._uploaders:
                return
            self._uploaders.discard(uploader)
            if not self._uploaders and threading.excepthook == self._hook:
                threading.excepthook = self._previous or threading.__excepthook__

    def _hook(self, args: threading.ExceptHookArgs) -> None:
        thread_module = type(args.thread).__module__ if args.thread is not None else ""
        with self._lock:
            uploaders = list(self._uploaders)
            previous = self._previous or threading.__excepthook__
        if not thread_module.startswith("watchdog") or not uploaders:
            previous(args)
            return
        description = f"{args.exc_type.__name__}: {args.exc_value}"
        for uploader in uploaders:
            uploader.watcher_died(description)


_watcher_failures = _WatcherFailures()


def _forget_dead_inotify_reader() -> None:
    """watchdog keeps its one inotify reader thread in a class attribute; once that thread has
    died, a later watch in this process (another job run by the same process) must get a new
    one rather than the dead one. Private to watchdog, hence the care."""
    try:
        from watchdog.observers.inotify_c import InotifyFD
    except ImportError:
        return
    reader = getattr(InotifyFD, "_instance", None)
    if reader is not None and not reader.is_alive():
        InotifyFD._instance = None


def _make_handler(uploader: ContinuousUploader, index: int) -> Any:
    # Built here so that importing this module does not import watchdog.
    from watchdog.events import FileSystemEventHandler

    class _Handler(FileSystemEventHandler):
        def on_any_event(self, event: FileSystemEvent) -> None:
            uploader._on_event(index, event)

    return _Handler()


def _relative(folder: Path, path: str) -> str | None:
    """The '/'-path of `path` below `folder`, or None for the folder itself or anything that is
    not strictly below it: keys never leave the output's prefix."""
    prefix = str(folder).rstrip("/") + "/"
    if not path.startswith(prefix):
        return None
    relative = path[len(prefix) :]
    parts = relative.split("/")
    if not relative or any(part in ("", ".", "..") for part in parts):
        return None
    return relative


def _describe_os_error(err: OSError) -> str:
    if err.errno == errno.ENOSPC:
        return "inotify watch limit reached; raise fs.inotify.max_user_watches"
    if err.errno == errno.EMFILE:
        return "inotify instance limit reached; raise fs.inotify.max_user_instances"
    return str(err)
