"""Prometheus metrics of the served trackers, through ``prometheus_client``
(the extra ``roundup-wsgi[metrics]``).

Per tracker (label ``tracker``: the mount name, or the tracker home's
directory name for one tracker at the root):

* ``roundup_wsgi_requests_total{tracker,method,status,kind}``: responses by
  method, status class (``2xx`` ... ``5xx``) and kind (``page``, ``rest``,
  ``xmlrpc``, ``static``, ``file``, ``health``);
* ``roundup_wsgi_request_duration_seconds{tracker,kind}``: a histogram of
  the time from the call of the application to the app_iter's ``close()``;
* ``roundup_wsgi_response_bytes_total{tracker,kind}``: body bytes sent;
* ``roundup_wsgi_requests_in_flight{tracker}``: requests being answered;
* ``roundup_wsgi_request_too_large_total{tracker}``: 413 answers;
* ``roundup_wsgi_database_unavailable_total{tracker}``: 503 answers for a
  database that could not be used (:mod:`roundup_wsgi.failures`);
* ``roundup_wsgi_client_gone_total{tracker}``: responses the client did not
  wait for.

Everything is counted by one finish hook (:mod:`roundup_wsgi.wsgi.finish`).
Under a server with several worker processes (gunicorn) set the
environment variable ``PROMETHEUS_MULTIPROC_DIR`` to an empty directory
before the server starts: ``prometheus_client``'s multiprocess mode then
keeps each worker's values in files there and every scrape adds them up
(``deploy/gunicorn.conf.py`` removes a dead worker's gauge files).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from .static import STATIC_PREFIXES
from .wsgi.finish import Finished, add_finish_hook

__all__ = ["KINDS", "METHODS", "Metrics", "kind_of"]

#: The request kinds.
KINDS = ("page", "rest", "xmlrpc", "static", "file", "health")
#: Methods counted under their name; others are counted as ``other``.
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
#: ``file12/name.txt``: an item of a file class, with a file name (Roundup's
#: ``Client.serve_file`` paths).
_FILE_PATH = re.compile(r"^[A-Za-z][A-Za-z_0-9]*\d+/.")
_STATIC = tuple(STATIC_PREFIXES)


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
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self._client = prometheus_client
        self.labels = dict(labels)
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.requests = Counter(
            "roundup_wsgi_requests_total",
            "Responses by method, status class and kind",
            ["tracker", "method", "status", "kind"],
            registry=registry,
        )
        self.duration = Histogram(
            "roundup_wsgi_request_duration_seconds",
            "Seconds from the application's call to the end of the response",
            ["tracker", "kind"],
            registry=registry,
        )
        self.bytes = Counter(
            "roundup_wsgi_response_bytes_total",
            "Response body bytes sent",
            ["tracker", "kind"],
            registry=registry,
        )
        self.in_flight = Gauge(
            "roundup_wsgi_requests_in_flight",
            "Requests being answered",
            ["tracker"],
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.too_large = Counter(
            "roundup_wsgi_request_too_large_total",
            "Requests refused with 413: body over max_request_body",
            ["tracker"],
            registry=registry,
        )
        self.unavailable = Counter(
            "roundup_wsgi_database_unavailable_total",
            "Requests answered 503 because the database could not be used",
            ["tracker"],
            registry=registry,
        )
        self.client_gone = Counter(
            "roundup_wsgi_client_gone_total",
            "Responses the client went away from before their end",
            ["tracker"],
            registry=registry,
        )

    def track_request(self, environ: dict[str, Any], path: str, mounted: bool) -> None:
        """Count the request ``path`` (``PATH_INFO``) at its end."""
        if mounted:
            name, _, rest = path.lstrip("/").partition("/")
            if name not in self.labels:
                name, rest = "", ""
        else:
            name, rest = "", path
        self.track(environ, name, kind_of(rest))

    def track(self, environ: dict[str, Any], name: str, kind: str) -> None:
        """Count one request of tracker ``name`` (``""``: the root) and
        ``kind``: in flight now, the rest at its end (a finish hook)."""
        tracker = self.labels.get(name, "")
        gauge = self.in_flight.labels(tracker)
        gauge.inc()

        def finished(record: Finished) -> None:
            gauge.dec()
            self.count(record, tracker, kind)

        if not add_finish_hook(environ, finished):
            gauge.dec()  # no FinishHooks above: nothing will be counted

    def count(self, record: Finished, tracker: str, kind: str) -> None:
        """Add one finished response to the counters."""
        method = record.environ.get("REQUEST_METHOD", "GET")
        if method not in METHODS:
            method = "other"
        code = record.status_code
        self.requests.labels(tracker, method, f"{code // 100}xx", kind).inc()
        self.duration.labels(tracker, kind).observe(record.duration)
        if record.bytes_sent:
            self.bytes.labels(tracker, kind).inc(record.bytes_sent)
        if code == 413:
            self.too_large.labels(tracker).inc()
        elif code == 503 and record.notes.get("database_unavailable"):
            self.unavailable.labels(tracker).inc()
        if record.client_gone:
            self.client_gone.labels(tracker).inc()

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
