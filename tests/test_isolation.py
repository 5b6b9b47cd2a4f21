"""Trackers in one process never see each other's code (roundup_wsgi.isolation).

Two seeded trackers whose ``extensions/`` register the same util names
(``utils.banner`` by ``registerUtilMethod``, ``utils.motto`` by
``registerUtil``) with different results, one of them a name the other
lacks, and set an attribute on their ``Client`` class.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from wsgiref.validate import validator

import pytest
from helpers.util_trackers import (
    BANNER_PAGES,
    CLIENT_MARK,
    NEEDS_UTIL_METHODS,
    add_banner_utils,
    add_bugs_and_support,
    parse_banner_page,
)
from webtest import TestApp

from roundup_wsgi import isolation
from roundup_wsgi.app import make_app
from roundup_wsgi.tracker import open_tracker

pytestmark = NEEDS_UTIL_METHODS


@pytest.fixture
def two_trackers(make_tracker: Callable[[str], Path]) -> tuple[Path, Path]:
    """``bugs`` (registers ``only_bugs`` too; its interfaces.py defines a
    ``Client``) and ``support`` (no interfaces.py: Roundup's own ``Client``),
    mounted at /bugs/ and /support/ of http://localhost/."""
    homes = add_bugs_and_support(lambda name: make_tracker(f"http://localhost/{name}/"))
    return homes["bugs"], homes["support"]


def test_each_tracker_has_classes_of_its_own(two_trackers: tuple[Path, Path]) -> None:
    from roundup.cgi import client, templating
    from roundup.mailgw import MailGW

    bugs_home, support_home = two_trackers
    bugs = open_tracker(str(bugs_home))
    support = open_tracker(str(support_home))
    for name in isolation.ISOLATED_CLASSES:
        assert getattr(bugs, name) is not getattr(support, name), name
    assert issubclass(bugs.TemplatingUtils, templating.TemplatingUtils)
    assert issubclass(bugs.MailGW, MailGW)
    assert issubclass(bugs.Client, client.Client)
    assert support.Client.__mro__[1] is client.Client
    # The seeded interfaces.py's Client is the base: its main() still runs.
    assert bugs.Client.main is bugs.Client.__mro__[1].main
    assert bugs.Client.__name__ == "Client"
    # What the extensions set stays on each tracker's own class ...
    assert getattr(bugs.Client, CLIENT_MARK) == "bugs"
    assert getattr(support.Client, CLIENT_MARK) == "support"
    assert not hasattr(client.Client, CLIENT_MARK)
    # ... and Roundup's shared TemplatingUtils is left alone.
    assert not hasattr(templating.TemplatingUtils, "banner")
    assert not hasattr(templating.TemplatingUtils, "only_bugs")


def test_stock_roundup_shares_util_methods(two_trackers: tuple[Path, Path]) -> None:
    """Control: opened by Roundup 2.4-2.6's own ``instance.open``, the last
    tracker loaded sets ``banner`` for both (the bug isolation fixes)."""
    from roundup import instance
    from roundup.cgi import templating

    bugs_home, support_home = two_trackers
    bugs = instance.open(str(bugs_home), 1)
    if hasattr(bugs, "templating_util_methods"):
        pytest.skip("this Roundup keeps util methods per tracker (2.7)")
    try:
        instance.open(str(support_home), 1)
        assert bugs.TemplatingUtils is templating.TemplatingUtils
        assert templating.TemplatingUtils.banner(None) == "banner of support"
    finally:
        for name in ("banner", "only_bugs"):
            if name in vars(templating.TemplatingUtils):
                delattr(templating.TemplatingUtils, name)
        from roundup.cgi import client

        if CLIENT_MARK in vars(client.Client):
            delattr(client.Client, CLIENT_MARK)


@pytest.mark.parametrize("debug", [False, True])
def test_pages_show_their_own_trackers_utils(
    two_trackers: tuple[Path, Path], debug: bool
) -> None:
    """make_app with a mapping, requests alternating between the trackers;
    ``debug`` reopens the tracker (and reruns extensions) per request."""
    bugs, support = two_trackers
    app = TestApp(validator(make_app({"bugs": bugs, "support": support}, debug=debug)))
    for name in ["bugs", "support", "support", "bugs", "bugs", "support"]:
        page = app.get(f"/{name}/issue?@template=banner")
        assert parse_banner_page(page.text) == BANNER_PAGES[name], page.text


def test_an_interfaces_templating_utils_is_the_base(
    make_tracker: Callable[[str], Path],
) -> None:
    """A tracker's own ``TemplatingUtils`` (interfaces.py) is subclassed, so
    its methods stay and what extensions add does not touch it."""
    home = make_tracker("http://localhost/")
    interfaces = home / "interfaces.py"
    interfaces.write_text(
        interfaces.read_text() + "\nfrom roundup.cgi import templating\n\n\n"
        "class TemplatingUtils(templating.TemplatingUtils):\n"
        "    def hello(self):\n"
        "        return 'hello'\n"
    )
    add_banner_utils(home, "bugs", only=False, other="bugs")
    tracker = open_tracker(str(home))
    base = tracker.TemplatingUtils.__mro__[1]
    assert base.__module__ != "roundup.cgi.templating"
    assert tracker.TemplatingUtils.hello(None) == "hello"
    assert "banner" not in vars(base)


def test_old_style_tracker_is_refused(tmp_path: Path) -> None:
    from roundup.instance import TrackerError

    (tmp_path / "dbinit.py").write_text("")
    with pytest.raises(TrackerError, match=r"dbinit\.py"):
        isolation.open_tracker(str(tmp_path))


def test_a_tracker_changing_roundups_rest_classes_is_named(
    make_tracker: Callable[[str], Path],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Roundup's REST classes stay shared: a tracker whose interfaces.py
    changes them gets a warning once a second tracker is opened."""
    from roundup import rest

    # Undone after the test, whatever the tracker sets.
    monkeypatch.setattr(
        rest.RestfulInstance,
        "max_response_row_size",
        rest.RestfulInstance.max_response_row_size,
    )
    monkeypatch.setattr(isolation, "_OPENED", {})
    monkeypatch.setattr(isolation, "_WARNED", set())
    changer = make_tracker("http://localhost/a/")
    interfaces = changer / "interfaces.py"
    interfaces.write_text(
        interfaces.read_text() + "\nfrom roundup.rest import RestfulInstance\n"
        "RestfulInstance.max_response_row_size = 26\n"
    )
    other = make_tracker("http://localhost/b/")
    with caplog.at_level("WARNING", logger="roundup_wsgi"):
        open_tracker(str(changer))
        open_tracker(str(changer))  # the same tracker again: no warning yet
        assert not caplog.records
        open_tracker(str(other))
        open_tracker(str(other))
    (record,) = caplog.records
    message = record.getMessage()
    assert str(changer) in message
    assert "RestfulInstance.max_response_row_size" in message
    assert "a process of its own" in message
