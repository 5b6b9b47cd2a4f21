"""Tests of roundup_wsgi.collectors: the in-process counts as Prometheus
metric families (the counting itself is in test_metrics.py)."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest, metrics
from prometheus_client.parser import text_string_to_metric_families

from roundup_wsgi.collectors import STATUS_LINES, Counts, status_line
from roundup_wsgi.wsgi.finish import Finished


def scrape(counts: Counts) -> dict[str, set[tuple[tuple[str, str], ...]]]:
    """``{sample name: {sorted labels, ...}}`` of one scrape of ``counts``."""
    registry = CollectorRegistry()
    registry.register(counts)
    found: dict[str, set[tuple[tuple[str, str], ...]]] = {}
    text = generate_latest(registry).decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = tuple(sorted(sample.labels.items()))
            found.setdefault(sample.name, set()).add(labels)
    return found


def counted(created: bool, monkeypatch: pytest.MonkeyPatch) -> Counts:
    """Counts of tracker ``bugs`` with one 413 response, scraped with or
    without ``_created`` samples."""
    monkeypatch.setattr(metrics, "_use_created", created)
    counts = Counts((0.1, 1.0, float("inf")), ("bugs",))
    requests, durations, event = counts.new_series(
        (("bugs", "page"), "POST", "413 Content Too Large")
    )
    requests[0] += 1
    durations[1] += 1
    counts.add_events(Finished({}, status="413 Content Too Large"), "bugs", event)
    return counts


def test_every_series_has_its_created_sample(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    found = scrape(counted(True, monkeypatch))
    page = (("kind", "page"), ("tracker", "bugs"))
    request = (("kind", "page"), ("method", "POST"), ("status", "4xx"))
    assert found["roundup_wsgi_requests_created"] == {(*request, ("tracker", "bugs"))}
    assert found["roundup_wsgi_request_duration_seconds_created"] == {page}
    assert found["roundup_wsgi_response_bytes_created"] == {page}
    for event in ("request_too_large", "database_unavailable", "client_gone"):
        assert found[f"roundup_wsgi_{event}_created"] == {(("tracker", "bugs"),)}
    assert found["roundup_wsgi_requests_in_flight"] == {(("tracker", "bugs"),)}


def test_no_created_samples_when_prometheus_client_turns_them_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    found = scrape(counted(False, monkeypatch))
    assert not [name for name in found if name.endswith("_created")]
    assert found["roundup_wsgi_request_too_large_total"] == {(("tracker", "bugs"),)}


@pytest.mark.parametrize(
    ("line", "result"),
    [
        ("200 OK", (200, "2xx")),
        ("503 Service Unavailable", (503, "5xx")),
        (None, (500, "5xx")),
        ("xyz", (500, "5xx")),
        ("700 Odd", (700, "7xx")),
    ],
)
def test_status_line(line: str | None, result: tuple[int, str]) -> None:
    assert status_line(line) == result
    assert STATUS_LINES[line] == result
