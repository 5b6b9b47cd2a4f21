"""Tests of roundup_wsgi.metrics in process (the real servers, gunicorn's
several workers included, are in test_operations.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from webtest import TestApp

from roundup_wsgi.app import make_app
from roundup_wsgi.metrics import kind_of


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
