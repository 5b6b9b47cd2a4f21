"""roundup_wsgi.webcheck: one warning when requests arrive for an address
``[tracker] web`` is not (issue 24, item 3): before, the only symptom was
Roundup's "Invalid Referer" on login."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from webtest import TestApp

from roundup_wsgi.app import make_app

WARNING = "which [tracker] web ="


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "roundup_wsgi" and WARNING in r.getMessage()
    ]


def login(web: TestApp, origin: str, **headers: str) -> None:
    web.post(
        "/",
        {"@action": "login", "__login_name": "admin", "__login_password": "x"},
        headers={"Origin": origin, "Referer": origin + "/", **headers},
        expect_errors=True,
    )


def test_a_login_for_another_address_warns_once(
    make_tracker: Callable[[str], Path], caplog: pytest.LogCaptureFixture
) -> None:
    home = make_tracker("http://127.0.0.1:8080/")
    web = TestApp(make_app(home))  # Host: localhost:80
    login(web, "http://localhost")
    login(web, "http://localhost")
    (line,) = warnings(caplog)
    assert "Referer: 'http://localhost/'" in line
    assert "[tracker] web = http://127.0.0.1:8080/" in line
    assert f"the [tracker] section of {home / 'config.ini'}" in line


def test_the_address_of_web_does_not_warn(
    tracker_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # web http://localhost/: Host must be localhost, not webtest's localhost:80.
    web = TestApp(make_app(tracker_home), extra_environ={"HTTP_HOST": "localhost"})
    login(web, "http://localhost")
    # A link from another site (a GET) is no CSRF check.
    web.get("/issue1", headers={"Referer": "https://lists.example/"})
    assert warnings(caplog) == []


def test_header_values_are_logged_escaped(
    tracker_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    web = TestApp(make_app(tracker_home))
    login(web, "http://localhost", Host="evil\x1b[31m\u00e9.example")
    (line,) = warnings(caplog)
    assert "\x1b" not in line
    assert "\u00e9" not in line
    assert "Host: 'evil\\x1b[31m\\xe9.example'" in line


def test_a_trusted_proxys_forwarded_host_that_matches_does_not_warn(
    make_tracker: Callable[[str], Path], caplog: pytest.LogCaptureFixture
) -> None:
    home = make_tracker("https://bugs.example/")
    web = TestApp(
        make_app(home, trusted_proxies="127.0.0.1"),
        extra_environ={"REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1:8080"},
    )
    login(
        web,
        "https://bugs.example",
        **{"X-Forwarded-Host": "bugs.example", "X-Forwarded-Proto": "https"},
    )
    assert warnings(caplog) == []
    login(web, "https://bugs.example", **{"X-Forwarded-Host": "other.example"})
    (line,) = warnings(caplog)
    assert "X-Forwarded-Host: 'other.example'" in line


def test_a_mounted_tracker_names_its_own_config(
    make_tracker: Callable[[str], Path], caplog: pytest.LogCaptureFixture
) -> None:
    bugs = make_tracker("http://localhost/bugs/")
    support = make_tracker("http://127.0.0.1:9/support/")
    web = TestApp(
        make_app({"bugs": bugs, "support": support}),
        extra_environ={"HTTP_HOST": "localhost"},
    )
    web.post("/bugs/", {"@action": "login"}, expect_errors=True)
    assert warnings(caplog) == []
    web.post("/support/", {"@action": "login"}, expect_errors=True)
    (line,) = warnings(caplog)
    assert str(support / "config.ini") in line
    assert "Host: 'localhost'" in line
