"""The access log of a tracker: Roundup's own logging filter, which
Roundup adds to every handler when it loads a tracker's configuration,
leaves the line as it is."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from webtest import TestApp

from roundup_wsgi.app import make_app
from roundup_wsgi.wsgi.accesslog import LOGGER_NAME

# Roundup adds its context_filter to every handler from 2.5 (logcontext).
pytest.importorskip("roundup.logcontext")


class Lines(logging.Handler):
    """A handler keeping each formatted line."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def lines() -> Iterator[Lines]:
    logger = logging.getLogger(LOGGER_NAME)
    handler = Lines()
    logger.addHandler(handler)
    level, propagate = logger.level, logger.propagate
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


def test_percent_signs_of_the_target_are_logged_as_they_are(
    tracker_home: Path, lines: Lines
) -> None:
    web = TestApp(make_app(tracker_home, access_log=True))
    web.get("/issue1")  # the tracker is loaded: Roundup's filter is added
    assert any("context_filter" in repr(f) for f in lines.filters)
    web.get("/issue1?q=%(process)d")
    assert "GET /issue1?q=%(process)d HTTP/1.0" in lines.lines[1]
    web.get("/issue1?q=%(process)d%25s")
    assert "GET /issue1?q=%(process)d%25s HTTP/1.0" in lines.lines[2]


def test_the_default_handler_declines_roundups_filter(
    tracker_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from roundup_wsgi.wsgi.accesslog import LineHandler

    logger = logging.getLogger(LOGGER_NAME)
    monkeypatch.setattr(logger, "handlers", [])
    monkeypatch.setattr(logger, "propagate", True)
    app = make_app(tracker_home, access_log=True)
    (handler,) = logger.handlers
    assert isinstance(handler, LineHandler)
    TestApp(app).get("/issue1")  # the tracker is loaded
    assert handler.filters == []
    other = logging.Filter("x")
    handler.addFilter(other)
    assert handler.filters == [other]
