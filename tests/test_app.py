"""Tests of roundup_wsgi.app: make_app and the environment-built application."""

from __future__ import annotations

import importlib
import io
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults
from wsgiref.validate import validator

import pytest
from helpers import seeded
from helpers.wsgi import request_garbage
from webtest import TestApp

import roundup_wsgi.app
from roundup_wsgi import RequestDispatcher
from roundup_wsgi.app import find_layer, make_app
from roundup_wsgi.options import ConfigError, Settings, WriteMode
from roundup_wsgi.wsgi.accesslog import LOGGER_NAME
from roundup_wsgi.wsgi.mount import Mount
from roundup_wsgi.wsgi.proxy import TrustedProxyFix


@pytest.fixture
def app_module(monkeypatch: pytest.MonkeyPatch) -> object:
    """A freshly imported roundup_wsgi.app (no cached ``application``)."""
    monkeypatch.delenv("ROUNDUP_TRACKER_HOME", raising=False)
    monkeypatch.delenv("ROUNDUP_WSGI_WRITE_MODE", raising=False)
    monkeypatch.delenv("ROUNDUP_TRACKERS", raising=False)
    return importlib.reload(roundup_wsgi.app)


def test_make_app_passes_options(tracker_home: Path) -> None:
    app = find_layer(
        roundup_wsgi.app.make_app(tracker_home, write_mode="server", debug=True),
        RequestDispatcher,
    )
    assert (app.write_mode, app.debug) == ("server", True)


@pytest.mark.parametrize(
    ("write_mode", "message"),
    [
        # No tracker home in the environment at all.
        (None, "ROUNDUP_TRACKER_HOME=/srv/roundup/bugs"),
        ("fast", "ROUNDUP_WSGI_WRITE_MODE='fast'"),
    ],
    ids=["no-tracker-home", "unknown-write-mode"],
)
def test_application_rejects_a_bad_environment(
    app_module: object,
    tracker_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    write_mode: str | None,
    message: str,
) -> None:
    """Without ROUNDUP_TRACKER_HOME, or with an unknown write mode, reading
    building ``application`` is a RuntimeError naming the variable to set."""
    if write_mode is not None:
        monkeypatch.setenv("ROUNDUP_TRACKER_HOME", str(tracker_home))
        monkeypatch.setenv("ROUNDUP_WSGI_WRITE_MODE", write_mode)
    with pytest.raises(RuntimeError, match=message):
        app_module.application.build()  # type: ignore[attr-defined]


def test_application_is_built_once_from_the_environment(
    app_module: object, tracker_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROUNDUP_TRACKER_HOME", str(tracker_home))
    monkeypatch.setenv("ROUNDUP_WSGI_WRITE_MODE", "server")
    application = app_module.application.build()  # type: ignore[attr-defined]
    assert application is app_module.application.build()  # type: ignore[attr-defined]
    first = find_layer(application, RequestDispatcher)
    assert first.home == str(tracker_home)
    assert first.write_mode == "server"
    with pytest.raises(AttributeError):
        app_module.no_such_name  # type: ignore[attr-defined]  # noqa: B018


def test_application_is_a_callable_in_the_module_namespace(
    app_module: Any, tracker_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """hypercorn (``eval(name, vars(module))``) and uWSGI's ``module=`` look
    the callable up in the module's namespace: it is there before any
    environment is read, and builds on its first call."""
    application = vars(app_module)["application"]
    assert callable(application)
    assert application.app is None
    monkeypatch.setenv("ROUNDUP_TRACKER_HOME", str(tracker_home))
    page = TestApp(application).get("/issue1")
    assert page.status_int == 200
    assert find_layer(application, RequestDispatcher).home == str(tracker_home)


def test_application_is_built_once_by_concurrent_first_calls(
    app_module: Any, tracker_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    import time

    built: list[object] = []

    def slow_build() -> Any:
        time.sleep(0.05)
        app = make_app(tracker_home)
        built.append(app)
        return app

    monkeypatch.setattr(app_module, "_from_environment", slow_build)
    application = app_module.LazyApplication()
    start = threading.Barrier(8)
    statuses: list[str] = []

    def call() -> None:
        environ: dict[str, Any] = {"PATH_INFO": "/@@file/style.css"}
        setup_testing_defaults(environ)
        start.wait()
        for _ in application(environ, lambda s, h, e=None: statuses.append(s)):
            pass

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(built) == 1
    assert statuses == ["200 OK"] * 8


def test_application_that_cannot_be_built_logs_one_line_and_answers_500(
    app_module: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("ROUNDUP_TRACKER_HOME", str(tmp_path / "nope"))
    web = TestApp(app_module.LazyApplication())
    for _ in range(2):
        answer = web.get("/", status=500)
        assert str(tmp_path) not in answer.text
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1
    line = errors[0].getMessage()
    assert "\n" not in line
    assert errors[0].exc_info is None
    assert f"ROUNDUP_TRACKER_HOME: tracker home {tmp_path / 'nope'}" in line
    assert "roundup-wsgi init" in line


# -- several trackers, generic options, errors naming the variable -----------


def test_application_serves_several_trackers(
    app_module: object, make_tracker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    bugs = make_tracker("http://localhost/bugs/")
    other = make_tracker("http://localhost/support/")
    monkeypatch.setenv("ROUNDUP_TRACKERS", f"bugs={bugs}, support={other}")
    monkeypatch.setenv("ROUNDUP_WSGI_DEBUG", "yes")
    monkeypatch.setenv("ROUNDUP_WSGI_TRUSTED_PROXIES", "127.0.0.1")
    app = app_module.application.build()  # type: ignore[attr-defined]
    assert isinstance(app, TrustedProxyFix)
    mount = find_layer(app, Mount)
    assert {name: d.home for name, d in mount.apps.items()} == {
        "bugs": str(bugs),
        "support": str(other),
    }
    assert all(d.debug for d in mount.apps.values())


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"ROUNDUP_TRACKERS": "bugs"}, "ROUNDUP_TRACKERS: 'bugs' is not NAME="),
        ({"ROUNDUP_TRACKERS": "a/b=/x"}, "tracker name 'a/b' cannot be"),
        ({"ROUNDUP_TRACKERS": "a={home},a={home}"}, "'a' is given twice"),
        ({"ROUNDUP_TRACKER_HOME": "{home}", "ROUNDUP_TRACKERS": "a=/x"}, "both"),
        ({"ROUNDUP_TRACKER_HOME": "{home}/nope"}, "ROUNDUP_TRACKER_HOME: tracker"),
        ({"ROUNDUP_TRACKERS": "a={home}/nope"}, "ROUNDUP_TRACKERS: tracker home"),
        (
            {"ROUNDUP_TRACKER_HOME": "{home}", "ROUNDUP_WSGI_TIMING": "often"},
            "ROUNDUP_WSGI_TIMING='often': expected a boolean",
        ),
        (
            {"ROUNDUP_TRACKER_HOME": "{home}", "ROUNDUP_WSGI_TRUSTED_PROXIES": "lan"},
            "trusted proxy 'lan' is not an IP address",
        ),
    ],
)
def test_environment_errors_name_the_variable(
    app_module: object,
    tracker_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    variables: dict[str, str],
    message: str,
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value.format(home=tracker_home))
    with pytest.raises(ConfigError, match=message):
        app_module.application.build()  # type: ignore[attr-defined]


def test_unknown_prefixed_variable_is_logged(
    app_module: object,
    tracker_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("ROUNDUP_TRACKER_HOME", str(tracker_home))
    monkeypatch.setenv("ROUNDUP_WSGI_WRITEMODE", "server")
    app = find_layer(app_module.application.build(), RequestDispatcher)  # type: ignore[attr-defined]
    assert app.write_mode == "auto"
    assert "ROUNDUP_WSGI_WRITEMODE is not an option" in caplog.text


def test_make_app_names_an_unknown_option(tracker_home: Path) -> None:
    with pytest.raises(TypeError, match=r"unknown option.*writemode.*write_mode"):
        roundup_wsgi.app.make_app(tracker_home, writemode="server")


def test_two_real_trackers(make_tracker: Callable[[str], Path]) -> None:
    """make_app with a mapping: each tracker answers under its own name."""
    bugs = make_tracker("http://localhost/bugs/")
    other = make_tracker("http://localhost/support/")
    app = TestApp(validator(make_app({"bugs": bugs, "support": other})))
    issue = app.get("/bugs/issue1")
    assert "Sample issue one" in issue.text
    assert 'action="http://localhost/bugs/"' in issue.text  # from [tracker] web
    attachment = app.get(f"/support/file1/{seeded.SMALL_FILE_NAME}")
    assert attachment.body == seeded.SMALL_FILE_BYTES
    style = app.get("/bugs/@@file/style.css")
    assert style.body == (bugs / "html" / "style.css").read_bytes()
    assert "Not found: nosuchclass" in app.get("/bugs/nosuchclass", status=404).text


def test_several_trackers_keep_roundup_servers_texts(
    make_tracker: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The generic Mount and access log get the tracker texts from make_app:
    roundup-server's index title, "tracker" in the 404 and 405 pages and
    the JSON log's ``tracker`` field."""
    bugs = make_tracker("http://localhost/bugs/")
    stream = io.StringIO()
    access = logging.getLogger(LOGGER_NAME)
    monkeypatch.setattr(access, "handlers", [logging.StreamHandler(stream)])
    monkeypatch.setattr(access, "propagate", False)
    level = access.level
    access.setLevel(logging.INFO)
    try:
        app = make_app({"bugs": bugs}, access_log=True, access_log_format="json")
        web = TestApp(app)
        index = web.get("/")
        web.get("/bugs/@@file/style.css")
    finally:
        access.setLevel(level)
    logged = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert index.html.title.string == "Roundup trackers index"
    assert index.html.h1.string == "Roundup trackers index"
    missing = web.get("/nosuch/", status=404).text
    assert (
        "There is no tracker named &#x27;nosuch&#x27; here; the index at / "
        "lists the trackers." in missing
    )
    assert "The tracker index only answers GET and HEAD." in web.post("/", status=405)
    assert [(line["path"], line["tracker"]) for line in logged] == [
        ("/", None),
        ("/bugs/@@file/style.css", "bugs"),
    ]
    assert all("app" not in line for line in logged)


def test_forged_forwarded_host_does_not_pass_roundups_csrf_check(
    make_tracker: Callable[[str], Path],
) -> None:
    """A direct client sending the tracker's host as X-Forwarded-Host to get
    past Roundup's Host check is refused; the same from the proxy passes."""
    home = make_tracker("https://bugs.example/")
    app = make_app(home, trusted_proxies="127.0.0.1")
    headers = {
        "Origin": "https://bugs.example",
        "Referer": "https://bugs.example/",
        "X-Forwarded-Host": "bugs.example",
        "X-Forwarded-Proto": "https",
    }
    login = {"__login_name": "demo", "__login_password": "demo-secret"}

    def post(remote_addr: str) -> Any:
        test = TestApp(app, extra_environ={"REMOTE_ADDR": remote_addr})
        return test.post(
            "/",
            {**login, "@action": "login"},
            headers=headers,
            extra_environ={"HTTP_HOST": "127.0.0.1:8080"},
        )

    forged = post("192.0.2.1")
    assert "Invalid HOST 127.0.0.1:8080" in forged.text
    assert "Hello, demo" not in forged.text
    proxied = post("127.0.0.1")
    assert "Hello, demo" in proxied.text
    assert "Invalid" not in proxied.text


def test_static_and_health_answers_leave_no_reference_cycle(
    tracker_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the access log, metrics and health on, a static file,
    ``/-/health`` and ``/-/metrics`` are freed by reference counting alone
    when they end: no cyclic garbage per request (whose collections cost a
    real server more than the operations layers themselves)."""
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    # The seeded tracker's Client overrides main(), which keeps its static
    # files off the fast path: without it they are kept and answered from
    # the response cache, as a demo tracker's are.
    (tracker_home / "interfaces.py").unlink()
    app = make_app(tracker_home, access_log=True, metrics=True)
    # Not /-/ready: at most once a second it opens the tracker's database,
    # whose Roundup objects refer to each other.
    paths = ["/@@file/style.css", "/-/health", "/-/metrics"]

    def get(path: str) -> str:
        environ: dict[str, Any] = {}
        setup_testing_defaults(environ)
        environ.update(
            PATH_INFO=path, REMOTE_ADDR="127.0.0.1", HTTP_ACCEPT_ENCODING="gzip"
        )
        statuses: list[str] = []
        result = app(
            environ, lambda status, headers, exc_info=None: statuses.append(status)
        )
        b"".join(result)
        result.close()  # type: ignore[attr-defined]
        return statuses[0]

    for path in paths:  # the tracker is opened, the caches filled
        get(path)
    assert len(find_layer(app, RequestDispatcher).response_cache or ()) == 1
    answers: list[str] = []
    left = request_garbage(
        lambda: answers.extend(get(path) for path in paths for _ in range(3))
    )
    assert answers == ["200 OK"] * len(answers)
    assert left == []


def test_make_app_gives_every_dispatcher_the_same_settings(
    make_tracker: Callable[[str], Path],
) -> None:
    """One Settings is built (keywords checked once) and travels down."""
    homes = {
        "bugs": str(make_tracker("http://localhost/bugs/")),
        "support": str(make_tracker("http://localhost/support/")),
    }
    app = make_app(homes, write_mode="buffer", trusted_proxies="127.0.0.1")
    mount = find_layer(app, Mount)
    first, second = mount.apps.values()
    assert isinstance(first, RequestDispatcher)
    assert isinstance(second, RequestDispatcher)
    assert first.settings is second.settings
    assert first.settings.write_mode is WriteMode.BUFFER
    assert first.settings.trusted_proxies == ("127.0.0.1",)
    assert first.write_mode is WriteMode.BUFFER


def test_settings_object_and_overriding_keywords(tracker_home: Path) -> None:
    settings = Settings.from_kwargs(write_mode="server", reuse_db=False)
    app = make_app(str(tracker_home), settings=settings, debug=True)
    dispatcher = find_layer(app, RequestDispatcher)
    assert (dispatcher.write_mode, dispatcher.debug) == (WriteMode.SERVER, True)
    assert dispatcher.db_pool is None
    # Roundup's signature, positionally, still works.
    positional = RequestDispatcher(str(tracker_home), False, False, None, None)
    assert positional.settings == Settings()
    given = RequestDispatcher(str(tracker_home), settings=settings)
    assert given.settings is settings
