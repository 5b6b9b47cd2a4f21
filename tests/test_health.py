"""Tests of roundup_wsgi.health: /-/health, /-/ready and who may read them
(in process, through make_app; the real servers are in test_operations.py)."""

from __future__ import annotations

import logging
import os
import threading
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from webtest import TestApp

from roundup_wsgi import health, readiness
from roundup_wsgi.app import find_layer, make_app
from roundup_wsgi.health import Operations

LOCAL = {"REMOTE_ADDR": "127.0.0.1"}


def client(app: Any, remote_addr: str = "127.0.0.1") -> TestApp:
    return TestApp(app, extra_environ={"REMOTE_ADDR": remote_addr})


def test_health_and_ready_answer_json(tracker_home: Path) -> None:
    web = client(make_app(tracker_home))
    alive = web.get("/-/health")
    assert alive.json == {"status": "ok"}
    assert alive.headers["Cache-Control"] == "no-store"
    ready = web.get("/-/ready")
    assert ready.json == {
        "status": "ok",
        "checks": {
            "database": "ok",
            "db_directory": "ok",
            "files": "ok",
            "stopping": "ok",
        },
    }
    assert web.head("/-/ready").body == b""


def test_ready_fails_near_the_file_descriptor_limit(tracker_home: Path) -> None:
    """Fewer than fd_reserve(limit) descriptors left: 503 naming "files"."""
    import resource

    from roundup_wsgi.health import fd_reserve

    web = client(make_app(tracker_home))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    used = len(os.listdir("/proc/self/fd"))
    # half the reserve left free: still failing if the reuse_db reaper
    # closes other tests' databases meanwhile, and room to open this one's
    limit = used + fd_reserve(used + 64) // 2
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    try:
        ready = web.get("/-/ready", status=503)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert ready.json["failing"] == ["files"]
    assert "file descriptor limit" in ready.json["checks"]["files"]
    assert web.get("/-/ready").json["checks"]["files"] == "ok"


def test_roundup_class_names_cannot_start_with_a_dash() -> None:
    """The namespace is safe: Roundup refuses such class names."""
    import re

    from roundup import hyperdb

    assert re.match(hyperdb.Class.class_re, "-") is None


def test_drain_file_makes_ready_fail(tracker_home: Path, tmp_path: Path) -> None:
    drain = tmp_path / "drain"
    web = client(make_app(tracker_home, drain_file=drain))
    assert web.get("/-/ready").json["checks"]["drain"] == "ok"
    drain.touch()
    answer = web.get("/-/ready", status=503)
    assert answer.json["failing"] == ["drain"]
    assert answer.headers["Retry-After"] == str(health.RETRY_AFTER)
    assert web.get("/-/health").status_int == 200  # alive all the same
    drain.unlink()
    assert web.get("/-/ready").json["status"] == "ok"


def test_stopping_makes_ready_fail(
    tracker_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readiness, "_stopping", threading.Event())
    web = client(make_app(tracker_home))
    health.begin_stop()
    assert web.get("/-/ready", status=503).json["failing"] == ["stopping"]


def test_unwritable_db_directory_fails(
    tracker_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    web = client(make_app(tracker_home))

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError(13, "Permission denied", str(tracker_home / "db"))

    monkeypatch.setattr(readiness.tempfile, "TemporaryFile", refuse)
    answer = web.get("/-/ready", status=503)
    assert answer.json["failing"] == ["db_directory"]
    # No paths in the answer.
    assert str(tracker_home) not in answer.text
    assert answer.json["checks"]["db_directory"] == "not writable (PermissionError)"


def test_ready_checks_run_at_most_once_a_second(
    tracker_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(tracker_home)
    readiness = find_layer(app, Operations).readiness[""]
    runs = []
    original = readiness._run

    def counted() -> dict[str, str]:
        runs.append(1)
        return original()

    monkeypatch.setattr(readiness, "_run", counted)
    web = client(app)
    for _ in range(5):
        web.get("/-/ready")
    assert len(runs) == 1


def test_other_networks_get_roundups_page(tracker_home: Path) -> None:
    """From outside the allowed networks the tracker answers, as for any
    unknown path: no health data."""
    app = make_app(tracker_home, health_networks="127.0.0.1/32")
    assert client(app, "127.0.0.1").get("/-/ready").json["status"] == "ok"
    for path in ("/-/health", "/-/ready", "/-/metrics"):
        answer = client(app, "127.0.0.2").get(path, status=404)
        assert answer.text == "Not found: " + path[1:]


def test_trusted_proxies_are_allowed_by_default(tracker_home: Path) -> None:
    app = make_app(tracker_home, trusted_proxies="10.1.2.3")
    # The proxy's own check names the proxy as the client.
    itself = {"X-Forwarded-For": "10.1.2.3"}
    assert client(app, "10.1.2.3").get("/-/health", headers=itself).json == {
        "status": "ok"
    }
    client(app, "10.1.2.4").get("/-/health", status=404)
    # A client behind the proxy is judged by its own address.
    forwarded = {"X-Forwarded-For": "198.51.100.7"}
    client(app, "10.1.2.3").get("/-/health", headers=forwarded, status=404)


def test_trusted_proxy_naming_no_client_is_refused(
    tracker_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Fail closed: a request from a trusted proxy without X-Forwarded-For
    (dropped by the server, e.g. waitress's clear_untrusted_proxy_headers)
    is not the proxy's loopback address asking; logged once, escaped."""
    app = make_app(tracker_home, trusted_proxies="127.0.0.1")
    web = client(app, "127.0.0.1")
    for path in ("/-/health", "/-/ready", "/-/metrics"):
        web.get(path, status=404)
    web.get("/-/ready", headers={"X-Forwarded-For": " , "}, status=404)
    web.get("/-/ready", headers={"X-Forwarded-For": "127.0.0.1"})
    client(app, "127.0.0.2").get("/-/ready")  # loopback, no proxy
    warnings = [r for r in caplog.records if "X-Forwarded-For" in r.getMessage()]
    assert len(warnings) == 1
    assert "'/-/health'" in warnings[0].getMessage()


def test_several_trackers_root_and_prefix(
    make_tracker: Callable[[str], Path],
) -> None:
    bugs = make_tracker("http://localhost/bugs/")
    support = make_tracker("http://localhost/support/")
    web = client(make_app({"bugs": bugs, "support": support}))
    both = web.get("/-/ready").json["checks"]
    assert {"bugs:database", "support:database", "stopping"} <= set(both)
    one = web.get("/support/-/ready").json["checks"]
    assert "support:database" in one
    assert "bugs:database" not in one
    assert web.get("/bugs/-/health").json == {"status": "ok"}
    web.get("/nosuch/-/health", status=404)


def test_only_get_and_head(tracker_home: Path) -> None:
    web = client(make_app(tracker_home))
    answer = web.post("/-/ready", status=405)
    assert answer.headers["Allow"] == "GET, HEAD"


def test_gunicorn_conf_marks_a_worker_stopping_on_sigterm(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """deploy/gunicorn.conf.py's post_worker_init chains begin_stop before
    the worker's own SIGTERM handler (called here in this process, with a
    stand-in for gunicorn's handler)."""
    import os
    import runpy
    import signal

    from helpers.deploy import DEPLOY_DIR

    monkeypatch.setattr(readiness, "_stopping", threading.Event())
    # The conf turns the access log on with os.environ.setdefault; set the
    # variable first so monkeypatch restores the environment afterwards (a
    # leaked "on" would reach every server the later tests start).
    monkeypatch.setenv("ROUNDUP_WSGI_ACCESS_LOG", "off")
    conf = runpy.run_path(str(DEPLOY_DIR / "gunicorn.conf.py"))
    called: list[int] = []
    previous = signal.signal(
        signal.SIGTERM, lambda signum, frame: called.append(signum)
    )
    try:
        # a stand-in for gunicorn's worker, whose application is built
        conf["post_worker_init"](types.SimpleNamespace(wsgi=object()))
        os.kill(os.getpid(), signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert health.stopping()
    assert called == [signal.SIGTERM]  # gunicorn's handler still ran


def test_drain_file_changes_are_logged_at_info(
    tracker_home: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="roundup_wsgi.health")
    drain = tmp_path / "drain"
    web = client(make_app(tracker_home, drain_file=drain))
    web.get("/-/ready")
    drain.touch()
    web.get("/-/ready", status=503)
    web.get("/-/ready", status=503)  # logged once per change
    drain.unlink()
    web.get("/-/ready")
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert messages == [
        f"drain file {drain} exists: /-/ready fails its drain check",
        f"drain file {drain} removed: the drain check of /-/ready passes again",
    ]
