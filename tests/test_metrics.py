"""Tests of roundup_wsgi.metrics in process (the real servers, gunicorn's
several workers included, are in test_operations.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest
from prometheus_client.parser import text_string_to_metric_families
from webtest import TestApp

from roundup_wsgi.app import make_app
from roundup_wsgi.metrics import Metrics, kind_of
from roundup_wsgi.wsgi.finish import FinishHooks, note

LOCAL = {"REMOTE_ADDR": "127.0.0.1"}


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/issue1", "page"),
        ("/", "page"),
        ("rest/data/issue", "rest"),
        ("/rest", "rest"),
        ("/xmlrpc", "xmlrpc"),
        ("/@@file/style.css", "static"),
        ("/_file/x.js", "static"),
        ("/file12/report.pdf", "file"),
        ("/msg3/", "page"),
    ],
)
def test_kind_of(path: str, kind: str) -> None:
    assert kind_of(path) == kind


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


def test_counters_413_and_bytes(
    tracker_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    app = make_app(tracker_home, metrics=True, max_request_body=10)
    web = TestApp(app, extra_environ={"REMOTE_ADDR": "127.0.0.1"})
    page = web.get("/issue1")
    web.get("/@@file/style.css")
    web.post("/issue", "x" * 100, status=413)
    text = web.get("/-/metrics").text
    requests = samples(text, "roundup_wsgi_requests_total")
    tracker = tracker_home.name
    assert requests == {
        (
            ("kind", "page"),
            ("method", "GET"),
            ("status", "2xx"),
            ("tracker", tracker),
        ): 1,
        (
            ("kind", "static"),
            ("method", "GET"),
            ("status", "2xx"),
            ("tracker", tracker),
        ): 1,
        (
            ("kind", "page"),
            ("method", "POST"),
            ("status", "4xx"),
            ("tracker", tracker),
        ): 1,
    }
    assert samples(text, "roundup_wsgi_request_too_large_total") == {
        (("tracker", tracker),): 1
    }
    sent = samples(text, "roundup_wsgi_response_bytes_total")
    assert sent[(("kind", "page"), ("tracker", tracker))] >= len(page.body)
    assert samples(text, "roundup_wsgi_requests_in_flight") == {
        (("tracker", tracker),): 1  # the scrape
    }


def test_metrics_off_by_default(tracker_home: Path) -> None:
    web = TestApp(make_app(tracker_home), extra_environ={"REMOTE_ADDR": "127.0.0.1"})
    assert web.get("/-/metrics", status=404).json == {"status": "metrics are off"}


def test_in_process_counts_of_each_kind_of_response(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without ``PROMETHEUS_MULTIPROC_DIR``: each response counted once in
    its series (method, status class, kind), the histogram, the bytes and
    the events; a 503 is a database outage only when noted so."""
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    metrics = Metrics({"": "bugs"})

    def tracker(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        path = environ["PATH_INFO"]
        if path == "/down":
            note(environ, "database_unavailable", True)
            start_response("503 Service Unavailable", [])
        elif path == "/busy":
            start_response("503 Service Unavailable", [])
        elif path == "/big":
            start_response("413 Content Too Large", [])
        else:
            start_response("200 OK", [])
        return [b"abc", b"de"]

    def counted(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        metrics.track_request(environ, environ["PATH_INFO"], False)
        return tracker(environ, start_response)

    app = FinishHooks(counted, [metrics.finished])

    def send(path: str, method: str = "GET", whole: bool = True) -> Any:
        environ: dict[str, Any] = {}
        setup_testing_defaults(environ)
        environ.update(PATH_INFO=path, REQUEST_METHOD=method)
        result = app(environ, lambda *args: None)
        chunks = iter(result)
        next(chunks)
        if whole:
            list(chunks)
        return result

    for path in ["/issue1", "/issue1", "/@@file/style.css", "/down", "/busy", "/big"]:
        send(path).close()
    send("/issue1", "BREW").close()
    send("/issue1", whole=False).close()  # the client went away
    in_flight = send("/rest/data/issue")  # not closed yet
    text = metrics.exposition()[0].decode()

    requests = samples(text, "roundup_wsgi_requests_total")

    def labels(method: str, status: str, kind: str) -> tuple[tuple[str, str], ...]:
        return (
            ("kind", kind),
            ("method", method),
            ("status", status),
            ("tracker", "bugs"),
        )

    assert requests == {
        labels("GET", "2xx", "page"): 3,
        labels("GET", "2xx", "static"): 1,
        labels("GET", "5xx", "page"): 2,
        labels("GET", "4xx", "page"): 1,
        labels("other", "2xx", "page"): 1,
    }
    durations = samples(text, "roundup_wsgi_request_duration_seconds_count")
    assert durations == {
        (("kind", "page"), ("tracker", "bugs")): 7,
        (("kind", "static"), ("tracker", "bugs")): 1,
    }
    assert samples(text, "roundup_wsgi_response_bytes_total") == {
        (("kind", "page"), ("tracker", "bugs")): 6 * 5 + 3,
        (("kind", "static"), ("tracker", "bugs")): 5,
    }
    bugs = (("tracker", "bugs"),)
    assert samples(text, "roundup_wsgi_request_too_large_total") == {bugs: 1}
    assert samples(text, "roundup_wsgi_database_unavailable_total") == {bugs: 1}
    assert samples(text, "roundup_wsgi_client_gone_total") == {bugs: 1}
    assert samples(text, "roundup_wsgi_requests_in_flight") == {bugs: 1}
    in_flight.close()
    text = metrics.exposition()[0].decode()
    assert samples(text, "roundup_wsgi_requests_in_flight") == {bugs: 0}
    assert sum(samples(text, "roundup_wsgi_requests_total").values()) == 9


def test_first_scrape_has_zero_error_series_process_metrics_and_no_health(
    tracker_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In one process: the event counters at 0 before any event, the
    process collector's ``process_*``, and a scrape counted as ``metrics``."""
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    web = TestApp(make_app(tracker_home, metrics=True), extra_environ=LOCAL)
    text = web.get("/-/metrics").text
    tracker = (("tracker", tracker_home.name),)
    for name in (
        "roundup_wsgi_request_too_large_total",
        "roundup_wsgi_database_unavailable_total",
        "roundup_wsgi_client_gone_total",
    ):
        assert samples(text, name) == {tracker: 0}, name
    assert samples(text, "roundup_wsgi_requests_in_flight") == {tracker: 1}
    names = {family.name for family in text_string_to_metric_families(text)}
    assert {"process_cpu_seconds", "process_open_fds"} <= names
    web.get("/-/health")
    text = web.get("/-/metrics").text
    kinds = {
        dict(labels)["kind"]: value
        for labels, value in samples(text, "roundup_wsgi_requests_total").items()
    }
    assert kinds == {"metrics": 1, "health": 1}
