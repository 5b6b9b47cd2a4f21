"""Tests of roundup_wsgi.app: make_app and the environment-built application."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

import roundup_wsgi.app
from roundup_wsgi import RequestDispatcher


@pytest.fixture
def app_module(monkeypatch: pytest.MonkeyPatch) -> object:
    """A freshly imported roundup_wsgi.app (no cached ``application``)."""
    monkeypatch.delenv("ROUNDUP_TRACKER_HOME", raising=False)
    monkeypatch.delenv("ROUNDUP_WSGI_WRITE_MODE", raising=False)
    return importlib.reload(roundup_wsgi.app)


def test_make_app_passes_options(tracker_home: Path) -> None:
    app = roundup_wsgi.app.make_app(tracker_home, write_mode="server", debug=True)
    assert isinstance(app, RequestDispatcher)
    assert (app.write_mode, app.debug) == ("server", True)


def test_application_needs_the_tracker_home_variable(app_module: object) -> None:
    with pytest.raises(RuntimeError, match="ROUNDUP_TRACKER_HOME=/srv/roundup/bugs"):
        app_module.application  # type: ignore[attr-defined]  # noqa: B018


def test_application_rejects_an_unknown_write_mode(
    app_module: object, tracker_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROUNDUP_TRACKER_HOME", str(tracker_home))
    monkeypatch.setenv("ROUNDUP_WSGI_WRITE_MODE", "fast")
    with pytest.raises(RuntimeError, match="ROUNDUP_WSGI_WRITE_MODE='fast'"):
        app_module.application  # type: ignore[attr-defined]  # noqa: B018


def test_application_is_built_once_from_the_environment(
    app_module: object, tracker_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROUNDUP_TRACKER_HOME", str(tracker_home))
    monkeypatch.setenv("ROUNDUP_WSGI_WRITE_MODE", "server")
    first = app_module.application  # type: ignore[attr-defined]
    assert first is app_module.application  # type: ignore[attr-defined]
    assert first.home == str(tracker_home)
    assert first.write_mode == "server"
    with pytest.raises(AttributeError):
        app_module.no_such_name  # type: ignore[attr-defined]  # noqa: B018
