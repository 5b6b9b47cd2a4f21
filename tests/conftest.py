"""Fixtures: seeded Roundup trackers built with Roundup's own API, and a fake
waitress server for in-process tests of ``roundup-wsgi serve``.

This file imports no Roundup (the tracker fixtures import it when used), so
``tests/wsgi/`` runs with Roundup not installed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.wsgi import FakeServer

#: Prefixes of the environment variables roundup-wsgi reads.
_OUR_VARIABLES = ("ROUNDUP_", "PROMETHEUS_MULTIPROC_DIR")


def _ours() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith(_OUR_VARIABLES)}


@pytest.fixture(autouse=True)
def _no_leaked_variables() -> Iterator[None]:
    """A test leaves roundup-wsgi's environment variables as it found them:
    every server a later test starts inherits ``os.environ`` (a leaked
    ``ROUNDUP_WSGI_ACCESS_LOG=on`` once changed every later server)."""
    before = _ours()
    yield
    after = _ours()
    if after != before:
        os.environ.update(before)
        for name in set(after) - set(before):
            del os.environ[name]
        changed = sorted(set(before.items()) ^ set(after.items()))
        pytest.fail(f"the test changed os.environ: {changed}; use monkeypatch.setenv")


@pytest.fixture(scope="session")
def tracker_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded classic/sqlite tracker, built once per test session (read-only)."""
    from helpers import seeded

    return seeded.build_seeded_tracker(tmp_path_factory.mktemp("template") / "tracker")


@pytest.fixture
def make_tracker(tmp_path: Path, tracker_template: Path) -> Callable[[str], Path]:
    """Return ``make(web)``: a fresh copy of the seeded tracker whose
    ``[tracker] web`` is ``web`` (e.g. ``http://127.0.0.1:8123/``)."""
    count = 0

    def make(web: str) -> Path:
        nonlocal count
        count += 1
        from helpers import seeded

        return seeded.copy_tracker(tracker_template, tmp_path / f"tracker{count}", web)

    return make


@pytest.fixture
def tracker_home(make_tracker: Callable[[str], Path]) -> Path:
    """A seeded tracker for in-process tests: ``[tracker] web`` is
    ``http://localhost/``, webtest's default host."""
    return make_tracker("http://localhost/")


@pytest.fixture
def servers_made(monkeypatch: pytest.MonkeyPatch) -> list[FakeServer]:
    """Replace ``waitress.create_server``; return the fake servers it made."""
    import waitress

    made: list[FakeServer] = []

    def create_server(app: Any, **options: Any) -> FakeServer:
        made.append(FakeServer(app, **options))
        return made[-1]

    monkeypatch.setattr(waitress, "create_server", create_server)
    from roundup_wsgi.cli import serve

    monkeypatch.setattr(
        serve,
        "_serve_until_stopped",
        lambda server, timeout: server.serve_until_stopped(timeout),
    )
    return made
