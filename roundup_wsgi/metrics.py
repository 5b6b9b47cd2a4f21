"""Prometheus metrics of the served trackers, through ``prometheus_client``
(the extra ``roundup-wsgi[metrics]``).

Per tracker (label ``tracker``: the mount name, or the tracker home's
directory name for one tracker at the root):

* ``roundup_wsgi_requests_total{tracker,method,status,kind}``: responses by
  method, status class (``2xx`` ... ``5xx``) and kind (``page``, ``rest``,
  ``xmlrpc``, ``static``, ``file``, ``health`` for ``/-/health`` and
  ``/-/ready``, ``metrics`` for the scrapes);
* ``roundup_wsgi_request_duration_seconds{tracker,kind}``: a histogram of
  the time from the call of the application to the app_iter's ``close()``;
* ``roundup_wsgi_response_bytes_total{tracker,kind}``: body bytes sent;
* ``roundup_wsgi_requests_in_flight{tracker}``: requests being answered;
* ``roundup_wsgi_request_too_large_total{tracker}``: 413 answers;
* ``roundup_wsgi_database_unavailable_total{tracker}``: 503 answers for a
  database that could not be used (:mod:`roundup_wsgi.failures`);
* ``roundup_wsgi_client_gone_total{tracker}``: responses the client did not
  wait for.

The three event counters and the in-flight gauge start at 0 for every
tracker, so ``rate()`` works from the first scrape.  In one process the
registry also has ``prometheus_client``'s process collector
(``process_cpu_seconds_total``, ``process_resident_memory_bytes``,
``process_open_fds`` ...; Linux only).

Everything is counted by one finish hook (:mod:`roundup_wsgi.wsgi.finish`),
:meth:`Metrics.finished`, into the stores of :mod:`roundup_wsgi.collectors`.
Under a server with several worker processes (gunicorn) set the
environment variable ``PROMETHEUS_MULTIPROC_DIR`` to an empty directory
before the server starts: ``prometheus_client``'s multiprocess mode then
keeps each worker's values in files there and every scrape adds them up
(``deploy/gunicorn.conf.py`` removes a dead worker's gauge files).
"""

from __future__ import annotations

import os
import re
from bisect import bisect_left
from collections.abc import Mapping
from typing import Any

from .collectors import (
    STATUS_LINES,
    TOO_LARGE,
    UNAVAILABLE,
    Counts,
    FileMetrics,
    status_line,
)
from .static import STATIC_PREFIXES
from .wsgi.finish import ENVIRON_KEY, Finished

__all__ = ["KINDS", "METHODS", "Metrics", "kind_of"]

#: The request kinds.
KINDS = ("page", "rest", "xmlrpc", "static", "file", "health", "metrics")
#: Methods counted under their name; others are counted as ``other``.
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
#: ``file12/name.txt``: an item of a file class, with a file name (Roundup's
#: ``Client.serve_file`` paths).
_FILE_PATH = re.compile(r"^[A-Za-z][A-Za-z_0-9]*\d+/.")
_STATIC = tuple(STATIC_PREFIXES)
#: The key of :attr:`Finished.notes` holding a tracked request's labels.
_NOTE = "roundup_wsgi.metrics"
#: Root paths of static files (the tracker at the root).
_STATIC_ROOT = tuple("/" + prefix for prefix in STATIC_PREFIXES)


def kind_of(path: str) -> str:
    """The kind of a tracker path (``PATH_INFO`` below the tracker, with or
    without its leading slash): one of :data:`KINDS` but ``health``."""
    path = path.lstrip("/")
    if path == "rest" or path.startswith("rest/"):
        return "rest"
    if path == "xmlrpc" or path.startswith("xmlrpc/"):
        return "xmlrpc"
    if path.startswith(_STATIC):
        return "static"
    if _FILE_PATH.match(path):
        return "file"
    return "page"


class Metrics:
    """The metrics of the application built by
    :func:`~roundup_wsgi.app.make_app` (one instance per application, in its
    own registry).

    Without ``PROMETHEUS_MULTIPROC_DIR`` (one process) the numbers are kept
    by :class:`~roundup_wsgi.collectors.Counts` and collected at each
    scrape; with it (several worker processes) they go to
    ``prometheus_client``'s metrics, which keep them in the shared
    directory's files.

    :param labels: ``{mount name: tracker label}``; ``""`` is one tracker at
        the root.
    :raises ImportError: ``prometheus_client`` is not installed (the message
        names the extra).
    """

    def __init__(self, labels: Mapping[str, str]) -> None:
        try:
            import prometheus_client
        except ImportError:
            raise ImportError(
                "metrics need the prometheus_client package: pip install "
                "'roundup-wsgi[metrics]' (or turn metrics off)"
            ) from None
        from prometheus_client import CollectorRegistry, Histogram, ProcessCollector

        self._client = prometheus_client
        self.labels = dict(labels)
        #: The label of the tracker at the root (``""`` if none).
        self._root = self.labels.get("", "")
        self._root_static = (self._root, "static")
        self.registry = CollectorRegistry(auto_describe=True)
        self._files: FileMetrics | None = None
        self._counts: Counts | None = None
        trackers = tuple(dict.fromkeys(self.labels.values()))
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            self._files = FileMetrics(self.registry, trackers)
        else:
            self._counts = Counts(tuple(Histogram.DEFAULT_BUCKETS), trackers)
            self.registry.register(self._counts)
            ProcessCollector(registry=self.registry)

    def track_request(self, environ: dict[str, Any], path: str, mounted: bool) -> None:
        """Count the request ``path`` (``PATH_INFO``) at its end."""
        if mounted:
            name, _, rest = path.lstrip("/").partition("/")
            if name not in self.labels:
                name, rest = "", ""
            self.track(environ, name, kind_of(rest))
            return
        # One tracker at the root, :meth:`track` inlined (every request).
        record = environ.get(ENVIRON_KEY)
        if record is None:
            return
        tracker = self._root
        record.notes[_NOTE] = (
            self._root_static
            if path.startswith(_STATIC_ROOT)
            else (tracker, kind_of(path))
        )
        if self._counts is not None:
            self._counts.live[record] = tracker
        elif self._files is not None:
            self._files.begin(tracker)

    def track(self, environ: dict[str, Any], name: str, kind: str) -> None:
        """Count one request of tracker ``name`` (``""``: the root) and
        ``kind``: in flight now, the rest when it ends (:meth:`finished`, a
        finish hook that must be registered on the
        :class:`~roundup_wsgi.wsgi.finish.FinishHooks` above)."""
        record = environ.get(ENVIRON_KEY)
        if record is None:
            return  # no FinishHooks above: nothing would be counted
        tracker = self.labels.get(name, "")
        record.notes[_NOTE] = (tracker, kind)
        if self._counts is not None:
            self._counts.live[record] = tracker  # one atomic store
        elif self._files is not None:
            self._files.begin(tracker)

    def finished(self, record: Finished) -> None:
        """The finish hook: count a response :meth:`track` saw begin."""
        tracked = record.notes.get(_NOTE)
        if tracked is None:
            return
        counts = self._counts
        if counts is None:
            if self._files is not None:
                self._files.end(tracked[0])
            self.count(record, *tracked)
            return
        # The in-process counts, for every response: one lookup finds the
        # series of this tracker, kind, method and status line.
        counts.live.pop(record, None)  # one atomic removal
        method = record.environ.get("REQUEST_METHOD", "GET")
        if method not in METHODS:
            method = "other"
        key = (tracked, method, record.status)
        series = counts.series.get(key)
        if series is None:
            series = counts.new_series(key)
        requests, histogram, event = series
        duration = record.duration
        index = bisect_left(counts.bounds, duration)
        with counts.lock:
            requests[0] += 1
            histogram[index] += 1
            histogram[-2] += duration
            histogram[-1] += record.bytes_sent
        if event is not None or record.client_gone:
            counts.add_events(record, tracked[0], event)

    def count(self, record: Finished, tracker: str, kind: str) -> None:
        """Add one finished response to ``prometheus_client``'s metrics
        (under ``PROMETHEUS_MULTIPROC_DIR``; in one process
        :meth:`finished` counts)."""
        if self._files is None:
            return
        method = record.environ.get("REQUEST_METHOD", "GET")
        if method not in METHODS:
            method = "other"
        status = record.status
        try:
            code, status_class = STATUS_LINES[status]
        except KeyError:
            code, status_class = status_line(status)
        event = None
        if code == 413:
            event = TOO_LARGE
        elif code == 503 and record.notes.get("database_unavailable"):
            event = UNAVAILABLE
        self._files.add(record, (tracker, method, status_class, kind), event)

    def exposition(self) -> tuple[bytes, str]:
        """``(body, content type)`` of a scrape: this process's registry, or
        under ``PROMETHEUS_MULTIPROC_DIR`` every process's values added up."""
        client = self._client
        registry = self.registry
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = client.CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return client.generate_latest(registry), client.CONTENT_TYPE_LATEST
