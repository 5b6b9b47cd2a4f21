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
:meth:`Metrics.finished`.  In one process the numbers are plain counts
under one lock, made into metric families only when scraped (a custom
collector, ``prometheus_client``'s "Custom Collectors"): about a microsecond
per response, where a labelled ``Counter.inc`` or ``Histogram.observe``
costs one to four each.
Under a server with several worker processes (gunicorn) set the
environment variable ``PROMETHEUS_MULTIPROC_DIR`` to an empty directory
before the server starts: ``prometheus_client``'s multiprocess mode then
keeps each worker's values in files there and every scrape adds them up
(``deploy/gunicorn.conf.py`` removes a dead worker's gauge files).
"""

from __future__ import annotations

import os
import re
import threading
import time
from bisect import bisect_left
from collections.abc import Iterator, Mapping
from typing import Any

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
#: The status class label of each status code's first digit.
_STATUS_CLASS = {n: f"{n}xx" for n in range(1, 6)}
#: ``{status line: (code, status class)}`` of the status lines seen (a
#: handful: their number is bounded by :data:`_STATUS_LINES_MAX`).
_STATUS_LINES: dict[str | None, tuple[int, str]] = {}
_STATUS_LINES_MAX = 256
#: Root paths of static files (the tracker at the root).
_STATIC_ROOT = tuple("/" + prefix for prefix in STATIC_PREFIXES)


def _status_line(status: str | None) -> tuple[int, str]:
    """``(code, status class)`` of a status line (``"200 OK"``: ``(200,
    "2xx")``; none or a malformed one: 500), remembered in
    :data:`_STATUS_LINES`."""
    try:
        code = int(status[:3]) if status is not None else 500
    except ValueError:
        code = 500
    found = (code, _STATUS_CLASS.get(code // 100) or f"{code // 100}xx")
    if len(_STATUS_LINES) < _STATUS_LINES_MAX:
        _STATUS_LINES[status] = found
    return found


#: ``(name, help, label names)`` of a metric.
_Metric = tuple[str, str, tuple[str, ...]]
#: The metrics (``_total``: a counter).
_REQUESTS: _Metric = (
    "roundup_wsgi_requests_total",
    "Responses by method, status class and kind",
    ("tracker", "method", "status", "kind"),
)
_DURATION: _Metric = (
    "roundup_wsgi_request_duration_seconds",
    "Seconds from the application's call to the end of the response",
    ("tracker", "kind"),
)
_BYTES: _Metric = (
    "roundup_wsgi_response_bytes_total",
    "Response body bytes sent",
    ("tracker", "kind"),
)
_IN_FLIGHT: _Metric = (
    "roundup_wsgi_requests_in_flight",
    "Requests being answered",
    ("tracker",),
)
_TOO_LARGE: _Metric = (
    "roundup_wsgi_request_too_large_total",
    "Requests refused with 413: body over max_request_body",
    ("tracker",),
)
_UNAVAILABLE: _Metric = (
    "roundup_wsgi_database_unavailable_total",
    "Requests answered 503 because the database could not be used",
    ("tracker",),
)
_CLIENT_GONE: _Metric = (
    "roundup_wsgi_client_gone_total",
    "Responses the client went away from before their end",
    ("tracker",),
)
_EVENTS = (_TOO_LARGE, _UNAVAILABLE, _CLIENT_GONE)
#: The labels of a counted response, ``(tracker, method, status class,
#: kind)``: those of :data:`_REQUESTS`.
_Labels = tuple[str, str, str, str]


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
    by :class:`_Counts` and collected at each scrape; with it (several
    worker processes) they go to ``prometheus_client``'s metrics, which keep
    them in the shared directory's files.

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
        self._files: _FileMetrics | None = None
        self._counts: _Counts | None = None
        trackers = tuple(dict.fromkeys(self.labels.values()))
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            self._files = _FileMetrics(self.registry, trackers)
        else:
            self._counts = _Counts(tuple(Histogram.DEFAULT_BUCKETS), trackers)
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
            code, status_class = _STATUS_LINES[status]
        except KeyError:
            code, status_class = _status_line(status)
        event = None
        if code == 413:
            event = _TOO_LARGE
        elif code == 503 and record.notes.get("database_unavailable"):
            event = _UNAVAILABLE
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


class _Counts:
    """This process's numbers, without ``PROMETHEUS_MULTIPROC_DIR``: plain
    counts in lists, updated under one lock per response, and a
    ``prometheus_client`` custom collector (``collect()``) that makes them
    into metric families at each scrape.

    Each response is counted through its *series*: the lists its numbers
    go to, found with one lookup by ``((tracker, kind), method, status
    line)`` (:attr:`series`; made by :meth:`new_series` the first time).

    Requests in flight are the records between :meth:`Metrics.track` and
    the end of the response, kept in :attr:`live` (one item stored and one
    removed per request, each a single operation under the GIL).
    """

    #: Series kept at most; past that a series is made for each response
    #: (a method or status line never seen before: bounded by the
    #: application, but not trusted to be).
    SERIES_MAX = 4096

    def __init__(self, buckets: tuple[float, ...], trackers: tuple[str, ...]) -> None:
        self.lock = threading.Lock()
        #: Upper bounds of the duration histogram's buckets, seconds (the
        #: last is infinity).
        self.bounds = buckets
        #: ``{record: tracker}`` of the requests in flight.
        self.live: dict[Finished, str] = {}
        #: ``(tracker, method, status class, kind)``: ``[responses]``.
        self.requests: dict[tuple[str, ...], list[int]] = {}
        #: ``(tracker, kind)``: ``[responses per bucket ..., sum of seconds,
        #: body bytes sent]``.
        self.durations: dict[tuple[str, ...], list[float]] = {}
        #: ``(metric name, tracker)``: 413s, 503s of the database, clients
        #: gone.
        self.events: dict[tuple[str, ...], int] = {}
        #: ``{tracker: None}`` of the trackers seen (their in-flight gauge is
        #: shown from the first request on, 0 when idle).
        self.trackers: dict[str, None] = {}
        #: When each labelled series began, seconds since the epoch
        #: (``_created`` samples, as ``prometheus_client``'s own metrics).
        self.created: dict[tuple[str, tuple[str, ...]], float] = {}
        #: ``{((tracker, kind), method, status line): (responses,
        #: durations, event)}``: the lists of :attr:`requests` and
        #: :attr:`durations` a response is counted in, and the event it
        #: is (:data:`_TOO_LARGE`, :data:`_UNAVAILABLE` for a 503 if the
        #: response was noted ``database_unavailable``, else None).
        self.series: dict[
            tuple[Any, ...], tuple[list[int], list[float], _Metric | None]
        ] = {}
        now = time.time()
        for tracker in trackers:  # the events and gauge start at 0
            self.trackers[tracker] = None
            for metric in _EVENTS:
                self.events[(metric[0], tracker)] = 0
                self.created[(metric[0], (tracker,))] = now

    def new_series(
        self, key: tuple[Any, ...]
    ) -> tuple[list[int], list[float], _Metric | None]:
        """The series of ``key`` (see :attr:`series`), its lists started at
        zero if new."""
        (tracker, kind), method, status = key
        code, status_class = _STATUS_LINES.get(status) or _status_line(status)
        event = _TOO_LARGE if code == 413 else _UNAVAILABLE if code == 503 else None
        labels = (tracker, method, status_class, kind)
        pair = (tracker, kind)
        with self.lock:
            requests = self.requests.get(labels)
            if requests is None:
                requests = self.requests[labels] = [0]
                self.created[(_REQUESTS[0], labels)] = time.time()
            durations = self.durations.get(pair)
            if durations is None:
                durations = self.durations[pair] = [0] * len(self.bounds) + [0.0, 0]
                now = time.time()
                self.created[(_DURATION[0], pair)] = now
                self.created[(_BYTES[0], pair)] = now
                self.trackers[tracker] = None
            series = (requests, durations, event)
            if len(self.series) < self.SERIES_MAX:
                self.series[key] = series
        return series

    def add_events(self, record: Finished, tracker: str, event: _Metric | None) -> None:
        """Count the events of a response: ``event`` (a 503 only if noted
        ``database_unavailable``) and a client gone."""
        if event is _UNAVAILABLE and not record.notes.get("database_unavailable"):
            event = None
        with self.lock:
            if event is not None:
                self._event(event, tracker)
            if record.client_gone:
                self._event(_CLIENT_GONE, tracker)

    def _event(self, metric: _Metric, tracker: str) -> None:
        key = (metric[0], tracker)
        if key in self.events:
            self.events[key] += 1
        else:  # a tracker label not known at the start ("" for a stray path)
            self.events[key] = 1
            self.created[(metric[0], (tracker,))] = time.time()

    def collect(self) -> Iterator[Any]:
        """The metric families, from a copy of the numbers taken under the
        lock (``prometheus_client`` calls this at each scrape)."""
        from prometheus_client import metrics
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )
        from prometheus_client.samples import Sample
        from prometheus_client.utils import floatToGoString

        with self.lock:
            requests = {key: value[0] for key, value in self.requests.items()}
            durations = {key: list(value) for key, value in self.durations.items()}
            sent = {key: value[-1] for key, value in durations.items()}
            events = dict(self.events)
            created = dict(self.created)
            live = list(self.live.values())
            trackers = list(self.trackers)
        with_created = bool(getattr(metrics, "_use_created", True))

        def counter(
            metric: _Metric,
            values: Mapping[tuple[str, ...], float],
        ) -> Any:
            name, help_text, labelnames = metric
            family = CounterMetricFamily(name, help_text, labels=labelnames)
            for key, value in values.items():
                family.add_metric(
                    key,
                    value,
                    created=created.get((name, key)) if with_created else None,
                )
            return family

        yield counter(_REQUESTS, requests)
        name, help_text, labelnames = _DURATION
        histogram = HistogramMetricFamily(name, help_text, labels=labelnames)
        for key, counted in durations.items():
            buckets = []
            total = 0
            for bound, count in zip(self.bounds, counted[:-2], strict=True):
                total += int(count)
                buckets.append((floatToGoString(bound), total))  # type: ignore[no-untyped-call]
            histogram.add_metric(key, buckets, counted[-2])
            if with_created and (name, key) in created:
                histogram.samples.append(
                    Sample(
                        name + "_created",
                        dict(zip(labelnames, key, strict=True)),
                        created[(name, key)],
                    )
                )
        yield histogram
        yield counter(_BYTES, sent)
        name, help_text, labelnames = _IN_FLIGHT
        gauge = GaugeMetricFamily(name, help_text, labels=labelnames)
        for tracker in dict.fromkeys([*trackers, *live]):
            gauge.add_metric((tracker,), live.count(tracker))
        yield gauge
        for metric in _EVENTS:
            yield counter(
                metric,
                {
                    (tracker,): value
                    for (event, tracker), value in events.items()
                    if event == metric[0]
                },
            )


class _FileMetrics:
    """The metrics under ``PROMETHEUS_MULTIPROC_DIR``: ``prometheus_client``'s
    own, whose values live in the shared directory's files (its
    "Multiprocess Mode"); the labelled children are looked up once per label
    set.  The event counters and the in-flight gauge of each of
    ``trackers`` are made (at 0) at once."""

    def __init__(self, registry: Any, trackers: tuple[str, ...]) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        def counter(metric: _Metric) -> Any:
            return Counter(metric[0], metric[1], metric[2], registry=registry)

        self.requests = counter(_REQUESTS)
        self.duration = Histogram(*_DURATION, registry=registry)
        self.bytes = counter(_BYTES)
        self.in_flight = Gauge(
            *_IN_FLIGHT, registry=registry, multiprocess_mode="livesum"
        )
        self.events = {metric[0]: counter(metric) for metric in _EVENTS}
        self._children: dict[tuple[str, ...], tuple[Any, Any, Any]] = {}
        self._gauges: dict[str, Any] = {}
        for tracker in trackers:
            self._gauges[tracker] = self.in_flight.labels(tracker)
            for events in self.events.values():
                events.labels(tracker)

    def begin(self, tracker: str) -> None:
        """One more request of ``tracker`` in flight."""
        gauge = self._gauges.get(tracker)
        if gauge is None:
            gauge = self._gauges[tracker] = self.in_flight.labels(tracker)
        gauge.inc()

    def end(self, tracker: str) -> None:
        """One request of ``tracker`` less in flight."""
        gauge = self._gauges.get(tracker)
        if gauge is not None:
            gauge.dec()

    def add(self, record: Finished, labels: _Labels, event: _Metric | None) -> None:
        """Count one finished response (``labels``: :data:`_Labels`)."""
        tracker, _, _, kind = labels
        children = self._children.get(labels)
        if children is None:
            children = self._children[labels] = (
                self.requests.labels(*labels),
                self.duration.labels(tracker, kind),
                self.bytes.labels(tracker, kind),
            )
        requests, duration, sent = children
        requests.inc()
        duration.observe(record.duration)
        if record.bytes_sent:
            sent.inc(record.bytes_sent)
        if event is not None:
            self.events[event[0]].labels(tracker).inc()
        if record.client_gone:
            self.events[_CLIENT_GONE[0]].labels(tracker).inc()
