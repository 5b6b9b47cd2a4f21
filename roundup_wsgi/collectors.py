"""Where :mod:`roundup_wsgi.metrics` keeps its numbers: the metric
definitions, and one store per process model.

* :class:`Counts` (one process): plain counts under one lock, made into
  metric families only when scraped (``prometheus_client``'s "Custom
  Collectors"), so counting a response costs no labelled ``inc`` or
  ``observe``;
* :class:`FileMetrics` (``PROMETHEUS_MULTIPROC_DIR`` set): ``prometheus_client``'s
  own metrics, whose values live in that directory's files
  ("Multiprocess Mode").
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

from .wsgi.finish import Finished

__all__ = [
    "BYTES",
    "CLIENT_GONE",
    "DURATION",
    "EVENTS",
    "IN_FLIGHT",
    "REQUESTS",
    "TOO_LARGE",
    "UNAVAILABLE",
    "Counts",
    "FileMetrics",
    "status_line",
]

#: ``(name, help, label names)`` of a metric.
Metric = tuple[str, str, tuple[str, ...]]
#: The metrics (``_total``: a counter).
REQUESTS: Metric = (
    "roundup_wsgi_requests_total",
    "Responses by method, status class and kind",
    ("tracker", "method", "status", "kind"),
)
DURATION: Metric = (
    "roundup_wsgi_request_duration_seconds",
    "Seconds from the application's call to the end of the response",
    ("tracker", "kind"),
)
BYTES: Metric = (
    "roundup_wsgi_response_bytes_total",
    "Response body bytes sent",
    ("tracker", "kind"),
)
IN_FLIGHT: Metric = (
    "roundup_wsgi_requests_in_flight",
    "Requests being answered",
    ("tracker",),
)
TOO_LARGE: Metric = (
    "roundup_wsgi_request_too_large_total",
    "Requests refused with 413: body over max_request_body",
    ("tracker",),
)
UNAVAILABLE: Metric = (
    "roundup_wsgi_database_unavailable_total",
    "Requests answered 503 because the database could not be used",
    ("tracker",),
)
CLIENT_GONE: Metric = (
    "roundup_wsgi_client_gone_total",
    "Responses the client went away from before their end",
    ("tracker",),
)
#: The event counters, started at 0 for every tracker.
EVENTS = (TOO_LARGE, UNAVAILABLE, CLIENT_GONE)
#: The labels of a counted response, ``(tracker, method, status class,
#: kind)``: those of :data:`REQUESTS`.
Labels = tuple[str, str, str, str]

#: The status class label of each status code's first digit.
_STATUS_CLASS = {n: f"{n}xx" for n in range(1, 6)}
#: ``{status line: (code, status class)}`` of the status lines seen (a
#: handful: their number is bounded by :data:`_STATUS_LINES_MAX`).
STATUS_LINES: dict[str | None, tuple[int, str]] = {}
_STATUS_LINES_MAX = 256


def status_line(status: str | None) -> tuple[int, str]:
    """``(code, status class)`` of a status line (``"200 OK"``: ``(200,
    "2xx")``; none or a malformed one: 500), remembered in
    :data:`STATUS_LINES`."""
    try:
        code = int(status[:3]) if status is not None else 500
    except ValueError:
        code = 500
    found = (code, _STATUS_CLASS.get(code // 100) or f"{code // 100}xx")
    if len(STATUS_LINES) < _STATUS_LINES_MAX:
        STATUS_LINES[status] = found
    return found


#: A response's series: ``(responses, durations, event)``, see
#: :attr:`Counts.series`.
Series = tuple[list[int], list[float], Metric | None]


class Counts:
    """This process's numbers, without ``PROMETHEUS_MULTIPROC_DIR``, and
    the custom collector (:meth:`collect`) that shows them.

    A response is counted in its *series*, found with one lookup by
    ``((tracker, kind), method, status line)`` (:attr:`series`, made by
    :meth:`new_series` the first time).  Requests in flight are the records
    in :attr:`live`, from :meth:`Metrics.track
    <roundup_wsgi.metrics.Metrics.track>` to the response's end (one
    store and one removal per request, each atomic under the GIL).

    :param buckets: the duration histogram's upper bounds, seconds (the
        last is infinity).
    :param trackers: the tracker labels whose events and in-flight gauge
        start at 0.
    """

    #: Series kept at most; past that a series is made for each response
    #: (a method or status line never seen before: bounded by the
    #: application, but not trusted to be).
    SERIES_MAX = 4096

    def __init__(self, buckets: tuple[float, ...], trackers: tuple[str, ...]) -> None:
        self.lock = threading.Lock()
        #: Upper bounds of the duration histogram's buckets, seconds.
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
        #: is (:data:`TOO_LARGE`, :data:`UNAVAILABLE` for a 503 if the
        #: response was noted ``database_unavailable``, else None).
        self.series: dict[tuple[Any, ...], Series] = {}
        now = time.time()
        for tracker in trackers:  # the events and gauge start at 0
            self.trackers[tracker] = None
            for metric in EVENTS:
                self.events[(metric[0], tracker)] = 0
                self.created[(metric[0], (tracker,))] = now

    def new_series(self, key: tuple[Any, ...]) -> Series:
        """The series of ``key`` (see :attr:`series`), its lists started at
        zero if new."""
        (tracker, kind), method, status = key
        code, status_class = STATUS_LINES.get(status) or status_line(status)
        event = TOO_LARGE if code == 413 else UNAVAILABLE if code == 503 else None
        labels = (tracker, method, status_class, kind)
        pair = (tracker, kind)
        with self.lock:
            requests = self.requests.get(labels)
            if requests is None:
                requests = self.requests[labels] = [0]
                self.created[(REQUESTS[0], labels)] = time.time()
            durations = self.durations.get(pair)
            if durations is None:
                durations = self.durations[pair] = [0] * len(self.bounds) + [0.0, 0]
                now = time.time()
                self.created[(DURATION[0], pair)] = now
                self.created[(BYTES[0], pair)] = now
                self.trackers[tracker] = None
            series = (requests, durations, event)
            if len(self.series) < self.SERIES_MAX:
                self.series[key] = series
        return series

    def add_events(self, record: Finished, tracker: str, event: Metric | None) -> None:
        """Count the events of a response: ``event`` (a 503 only if noted
        ``database_unavailable``) and a client gone."""
        if event is UNAVAILABLE and not record.notes.get("database_unavailable"):
            event = None
        with self.lock:
            if event is not None:
                self._event(event, tracker)
            if record.client_gone:
                self._event(CLIENT_GONE, tracker)

    def _event(self, metric: Metric, tracker: str) -> None:
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

        with self.lock:
            requests = {key: value[0] for key, value in self.requests.items()}
            durations = {key: list(value) for key, value in self.durations.items()}
            events = dict(self.events)
            created = dict(self.created)
            live = list(self.live.values())
            trackers = list(self.trackers)
        if not getattr(metrics, "_use_created", True):
            created = {}
        sent = {key: value[-1] for key, value in durations.items()}
        yield _counter(REQUESTS, requests, created)
        yield _histogram(self.bounds, durations, created)
        yield _counter(BYTES, sent, created)
        yield _gauge(trackers, live)
        for metric in EVENTS:
            counted: dict[tuple[str, ...], float] = {
                (tracker,): value
                for (event, tracker), value in events.items()
                if event == metric[0]
            }
            yield _counter(metric, counted, created)


def _counter(
    metric: Metric,
    values: Mapping[tuple[str, ...], float],
    created: Mapping[tuple[str, tuple[str, ...]], float],
) -> Any:
    """A ``CounterMetricFamily`` of ``{labels: value}``, with the
    ``_created`` times in ``created`` (none: no ``_created`` samples)."""
    from prometheus_client.core import CounterMetricFamily

    name, help_text, labelnames = metric
    family = CounterMetricFamily(name, help_text, labels=labelnames)
    for key, value in values.items():
        family.add_metric(key, value, created=created.get((name, key)))
    return family


def _histogram(
    bounds: tuple[float, ...],
    durations: Mapping[tuple[str, ...], list[float]],
    created: Mapping[tuple[str, tuple[str, ...]], float],
) -> Any:
    """The ``HistogramMetricFamily`` of :data:`DURATION` from
    :attr:`Counts.durations` (per-bucket counts made cumulative)."""
    from prometheus_client.core import HistogramMetricFamily
    from prometheus_client.samples import Sample
    from prometheus_client.utils import floatToGoString

    name, help_text, labelnames = DURATION
    histogram = HistogramMetricFamily(name, help_text, labels=labelnames)
    for key, counted in durations.items():
        buckets = []
        total = 0
        for bound, count in zip(bounds, counted[:-2], strict=True):
            total += int(count)
            buckets.append((floatToGoString(bound), total))  # type: ignore[no-untyped-call]
        histogram.add_metric(key, buckets, counted[-2])
        if (name, key) in created:
            histogram.samples.append(
                Sample(
                    name + "_created",
                    dict(zip(labelnames, key, strict=True)),
                    created[(name, key)],
                )
            )
    return histogram


def _gauge(trackers: list[str], live: list[str]) -> Any:
    """The ``GaugeMetricFamily`` of :data:`IN_FLIGHT`: each tracker's
    records in ``live`` (0 for the other ``trackers``)."""
    from prometheus_client.core import GaugeMetricFamily

    name, help_text, labelnames = IN_FLIGHT
    gauge = GaugeMetricFamily(name, help_text, labels=labelnames)
    for tracker in dict.fromkeys([*trackers, *live]):
        gauge.add_metric((tracker,), live.count(tracker))
    return gauge


class FileMetrics:
    """The metrics under ``PROMETHEUS_MULTIPROC_DIR``: ``prometheus_client``'s
    own, in ``registry``; each labelled child is looked up once per label
    set.

    :param trackers: the tracker labels whose event counters and in-flight
        gauge are made (at 0) at once.
    """

    def __init__(self, registry: Any, trackers: tuple[str, ...]) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        def counter(metric: Metric) -> Any:
            return Counter(metric[0], metric[1], metric[2], registry=registry)

        self.requests = counter(REQUESTS)
        self.duration = Histogram(*DURATION, registry=registry)
        self.bytes = counter(BYTES)
        self.in_flight = Gauge(
            *IN_FLIGHT, registry=registry, multiprocess_mode="livesum"
        )
        self.events = {metric[0]: counter(metric) for metric in EVENTS}
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

    def add(self, record: Finished, labels: Labels, event: Metric | None) -> None:
        """Count one finished response (``labels``: :data:`Labels`)."""
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
            self.events[CLIENT_GONE[0]].labels(tracker).inc()
