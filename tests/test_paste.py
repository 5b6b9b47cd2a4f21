"""Tests of roundup_wsgi.paste: the PasteDeploy ``egg:roundup-wsgi`` factory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from paste.deploy import loadapp
from webtest import TestApp

from roundup_wsgi import RequestDispatcher
from roundup_wsgi.app import find_layer
from roundup_wsgi.dispatcher import ROUNDUP_ALWAYS_CACHES
from roundup_wsgi.options import ConfigError
from roundup_wsgi.paste import app_factory
from roundup_wsgi.wsgi.mount import Mount
from roundup_wsgi.wsgi.proxy import TrustedProxyFix


def write_ini(directory: Path, body: str) -> str:
    path = directory / "site.ini"
    path.write_text("[app:main]\nuse = egg:roundup-wsgi\n" + body)
    return f"config:{path}"


def test_loadapp_one_tracker_with_typed_options(
    tmp_path: Path, make_tracker: Callable[[str], Path]
) -> None:
    home = make_tracker("http://localhost/")
    uri = write_ini(
        tmp_path,
        f"tracker_home = {home}\ndebug = yes\nwrite_mode = server\n"
        "feature_flags = cache_tracker=false\n",
    )
    if ROUNDUP_ALWAYS_CACHES:
        with pytest.warns(FutureWarning, match="'cache_tracker' feature flag"):
            app = find_layer(loadapp(uri), RequestDispatcher)
    else:
        app = find_layer(loadapp(uri), RequestDispatcher)
    assert app.debug is True
    assert app.write_mode == "server"
    assert app.feature_flags == {"cache_tracker": False}
    assert app.use_cached_tracker() is ROUNDUP_ALWAYS_CACHES


def test_loadapp_several_trackers_relative_to_the_ini(
    tmp_path: Path, make_tracker: Callable[[str], Path]
) -> None:
    make_tracker("http://localhost/bugs/").rename(tmp_path / "bugs")
    make_tracker("http://localhost/support/").rename(tmp_path / "support")
    uri = write_ini(
        tmp_path,
        "trackers =\n    bugs = bugs\n    support = %(here)s/support\n"
        "trusted_proxies = 127.0.0.1 ::1\n",
    )
    app = loadapp(uri)
    assert isinstance(app, TrustedProxyFix)
    assert sorted(find_layer(app, Mount).apps) == ["bugs", "support"]
    web = TestApp(app, extra_environ={"HTTP_HOST": "localhost"})
    assert "Sample issue one" in web.get("/support/issue1").text


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", "set exactly one of 'tracker_home"),
        ("tracker_home = {home}\ntrackers = a={home}\n", "set exactly one of"),
        ("tracker_home = {home}\nwritemode = buffer\n", "unknown option 'writemode'"),
        ("tracker_home = {home}\ndebug = maybe\n", "debug = maybe: expected a boolean"),
        (
            "tracker_home = {home}\nwrite_mode = fast\n",
            "write_mode = fast: expected one",
        ),
        ("tracker_home = {home}/nope\n", "tracker_home: tracker home .*/nope does"),
        ("trackers = bugs\n", "'bugs' is not NAME=TRACKER_HOME"),
        ("tracker_home = {home}\ntrusted_proxies = proxy.lan\n", "'proxy.lan' is"),
    ],
)
def test_configuration_errors_name_the_option(
    tmp_path: Path, tracker_home: Path, body: str, message: str
) -> None:
    uri = write_ini(tmp_path, body.format(home=tracker_home))
    with pytest.raises(ConfigError, match=message) as error:
        loadapp(uri)
    assert "site.ini" in str(error.value)


def test_unknown_option_lists_the_known_ones(tracker_home: Path) -> None:
    with pytest.raises(ConfigError) as error:
        app_factory({}, tracker_home=str(tracker_home), colour="blue")
    for name in ("write_mode", "debug", "lang", "trusted_proxies", "trackers"):
        assert name in str(error.value)
