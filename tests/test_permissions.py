"""Remembered permission checks (roundup_wsgi/permissions.py): the same
answers as Roundup's ``Security.hasPermission`` and
``Security.hasSearchPermission`` for every question, the same node-cache
effects, the same pages as Roundup's own dispatcher, and a permission
change (in the database, in ``schema.py`` or at run time) seen by the next
request.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import roundup.instance
from helpers import seeded
from helpers.wsgi import normalise_body
from roundup.cgi.wsgi_handler import RequestDispatcher as StockDispatcher
from roundup.security import Security
from webtest import TestApp

import roundup_wsgi.dispatcher as dispatcher_module
from roundup_wsgi import RequestDispatcher, permissions

#: The permission memory mirrors Roundup 2.5+'s Security.hasPermission.
needs_support = pytest.mark.skipif(
    not permissions.SUPPORTED,
    reason="Roundup 2.4 has no Role.hasPermission: the permission memory stays off",
)

WEB = "http://localhost/"


ADMIN = seeded.ADMIN_AUTH
DEMO = seeded.DEMO_AUTH


@pytest.fixture
def home(make_tracker: Callable[[str], Path]) -> Path:
    return make_tracker(WEB)


def assert_same_cache_effects(ours: Any, stock: Any) -> None:
    """The two databases' node caches were used alike: the same rows in the
    same least-recently-used order, and as many cache hits."""
    assert ours.cache_lru == stock.cache_lru
    assert ours.stats["cache_hits"] == stock.stats["cache_hits"]


@pytest.fixture
def databases(home: Path) -> Iterator[Callable[[str], Any]]:
    """``open(user)``: a database of the tracker, closed at the end."""
    opened: list[Any] = []
    tracker = roundup.instance.open(str(home))

    def open_db(user: str) -> Any:
        db = tracker.open(user)
        opened.append(db)
        return db

    yield open_db
    for db in opened:
        db.close()


def questions(db: Any) -> Iterator[tuple[Any, ...]]:
    """Every (permission, userid, classname, property, itemid) the schema
    allows, with item ids that exist and one that does not."""
    users = db.user.list()
    for permission in sorted(db.security.permission):
        for userid in users:
            yield (permission, userid)
            for classname in sorted(db.classes):
                items = [None, *db.getclass(classname).list()[:3], "999"]
                properties = [None, *sorted(db.getclass(classname).getprops())]
                for prop in properties:
                    for itemid in items:
                        yield (permission, userid, classname, prop, itemid)


def outcome(db: Any, question: tuple[Any, ...], skip: bool) -> tuple[str, Any]:
    """The answer, or the exception's type (a check function reading an
    item that does not exist raises)."""
    try:
        answer = db.security.hasPermission(*question, skip_permissions_with_check=skip)
    except Exception as error:
        return ("raised", type(error))
    return ("answered", bool(answer))


@needs_support
def test_every_answer_is_roundups(databases: Callable[[str], Any]) -> None:
    """Asked twice (the second time from memory), every question gets
    Roundup's answer, and the databases' node caches see the same hits in
    the same order (Roundup's ``get_roles`` reads the user through them)."""
    ours, stock = databases("admin"), databases("admin")
    assert permissions.install(ours)
    assert not permissions.installed(stock)
    asked = 0
    for _ in range(2):
        for question in questions(stock):
            for skip in (False, True):
                expected = outcome(stock, question, skip)
                assert outcome(ours, question, skip) == expected, (question, skip)
                asked += 1
    assert asked > 5000
    assert_same_cache_effects(ours, stock)


@needs_support
def test_an_itemid_without_classname_is_roundups_error(
    databases: Callable[[str], Any],
) -> None:
    db = databases("admin")
    assert permissions.install(db)
    with pytest.raises(ValueError, match="classname must accompany itemid"):
        db.security.hasPermission("View", "1", None, None, "1")


@needs_support
def test_a_role_change_in_the_database_is_seen_at_once(
    databases: Callable[[str], Any],
) -> None:
    db = databases("admin")
    assert permissions.install(db)
    demo = db.user.lookup(seeded.DEMO_USER)
    assert db.security.hasPermission("Edit", demo, "issue", "title", "1")
    db.user.set(demo, roles="Anonymous")
    assert not db.security.hasPermission("Edit", demo, "issue", "title", "1")
    db.user.set(demo, roles="User,Admin")
    assert db.security.hasPermission("Edit", demo, "user", "roles", "1")


@needs_support
def test_a_permission_added_at_run_time_is_seen_at_once(
    databases: Callable[[str], Any],
) -> None:
    db = databases("admin")
    assert permissions.install(db)
    anonymous = db.user.lookup("anonymous")
    assert not db.security.hasPermission("View", anonymous, "user")
    db.security.addPermissionToRole("Anonymous", "View", "user")
    assert db.security.hasPermission("View", anonymous, "user")
    role = db.security.addRole(name="Viewer")
    permission = db.security.addPermission(name="View", klass="keyword")
    role.addPermission(permission)
    db.user.set(anonymous, roles="Viewer")
    assert db.security.hasPermission("View", anonymous, "keyword")
    assert not db.security.hasPermission("View", anonymous, "issue")


@needs_support
def test_not_installed_over_a_replaced_method(
    databases: Callable[[str], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An extension that replaced Roundup's method keeps its own."""
    mine = databases("admin")
    mine.security.hasPermission = lambda *args, **kwargs: True
    assert not permissions.install(mine)
    monkeypatch.setattr(Security, "hasPermission", lambda *a, **k: True)
    assert not permissions.install(databases("admin"))


# -- pages: the same bytes as Roundup's own dispatcher --------------------------

PAGES = [
    ("/issue", {}),
    ("/issue1", {}),
    ("/issue", DEMO),
    ("/issue1", DEMO),
    ("/issue?@columns=title,status,assignedto,creator&@sort=-activity", DEMO),
    ("/user", DEMO),
    ("/user1", DEMO),
    ("/user3", DEMO),  # the demo user's own page: a check function
    ("/user?@template=index", ADMIN),
    ("/issue", ADMIN),
    ("/rest/data/user/1", DEMO),
    ("/rest/data/issue", DEMO),
]


def compare(ours: TestApp, stock: TestApp, path: str, headers: dict[str, str]) -> bytes:
    a = ours.get(path, headers=headers, expect_errors=True)
    b = stock.get(path, headers=headers, expect_errors=True)
    assert a.status == b.status, path
    assert normalise_body(a.body) == normalise_body(b.body), path
    return bytes(a.body)


def apps(home: Path, **flags: Any) -> tuple[TestApp, TestApp, RequestDispatcher]:
    dispatcher = RequestDispatcher(str(home), **flags)
    environ = {"HTTP_HOST": "localhost"}
    stock_flags = {"feature_flags": flags["feature_flags"]} if flags else {}
    stock = StockDispatcher(str(home), **stock_flags)
    return (
        TestApp(dispatcher, extra_environ=environ),
        TestApp(stock, extra_environ=environ),
        dispatcher,
    )


@needs_support
def test_pages_are_the_same_as_roundups(home: Path) -> None:
    ours, stock, dispatcher = apps(home)
    for _ in range(2):  # the second round answers from memory
        for path, headers in PAGES:
            compare(ours, stock, path, headers)
    assert dispatcher.db_pool is not None
    kept = dispatcher.db_pool._slot().kept
    assert kept is not None
    assert permissions.installed(kept.db)


def edit_demo(home: Path, roles: str) -> None:
    db = roundup.instance.open(str(home)).open("admin")
    try:
        db.user.set(db.user.lookup(seeded.DEMO_USER), roles=roles)
        db.commit()
    finally:
        db.close()


@needs_support
def test_a_role_change_changes_the_next_page(home: Path) -> None:
    """The demo user loses role User, then gets Admin: each page is the one
    Roundup's dispatcher gives at that moment."""
    ours, stock, _ = apps(home)
    before = compare(ours, stock, "/issue1", DEMO)
    assert b'name="@csrf"' in before  # User may edit: the edit form
    edit_demo(home, "Anonymous")
    after = compare(ours, stock, "/issue1", DEMO)
    assert b'name="@csrf"' not in after
    edit_demo(home, "Admin")
    users = compare(ours, stock, "/user?@template=index", DEMO)
    assert b"You are not allowed" not in users


ANONYMOUS_SEES_USERS = (
    "\ndb.security.addPermissionToRole('Anonymous', 'View', 'user')\n"
)


def touch_later(path: Path) -> None:
    later = time.time() + 5
    os.utime(path, (later, later))


@pytest.mark.skipif(
    dispatcher_module.ROUNDUP_ALWAYS_CACHES,
    reason="this Roundup always caches the tracker: schema.py is read once",
)
def test_a_schema_permission_change_changes_the_next_page(home: Path) -> None:
    ours, stock, _ = apps(home, feature_flags={"cache_tracker": False})
    page = compare(ours, stock, "/user?@template=index", {})
    assert b"not allowed" in page or b"Please login" in page
    schema = home / "schema.py"
    schema.write_text(schema.read_text() + ANONYMOUS_SEES_USERS)
    touch_later(schema)
    page = compare(ours, stock, "/user?@template=index", {})
    assert b"not allowed" not in page
    assert b"Please login" not in page
    assert b"demo" in page


@needs_support
def test_a_template_edit_changes_the_next_page(home: Path) -> None:
    ours, stock, _ = apps(home)
    compare(ours, stock, "/issue", DEMO)
    template = home / "html" / "issue.index.html"
    template.write_text(template.read_text().replace("List of issues", "All bugs"))
    touch_later(template)
    page = compare(ours, stock, "/issue", DEMO)
    assert b"All bugs" in page


@needs_support
def test_trackers_in_one_process_keep_their_own_permissions(
    make_tracker: Callable[[str], Path],
) -> None:
    """Two trackers served by one process, one of which lets anonymous
    users see the user list: each answers by its own schema."""
    homes = [make_tracker(WEB), make_tracker(WEB)]
    schema = homes[1] / "schema.py"
    schema.write_text(schema.read_text() + ANONYMOUS_SEES_USERS)
    pairs = [apps(home)[:2] for home in homes]
    for _ in range(2):
        closed = compare(*pairs[0], "/user?@template=index", {})
        opened = compare(*pairs[1], "/user?@template=index", {})
        assert b"admin" not in closed
        assert b"admin" in opened


@pytest.mark.skipif(permissions.SUPPORTED, reason="the installed Roundup is supported")
def test_install_leaves_roundup_alone_where_unsupported(
    databases: Callable[[str], Any],
) -> None:
    """Roundup 2.4 checks permissions without Role.hasPermission: install()
    changes nothing and Roundup's own method answers."""
    db = databases("admin")
    assert permissions.install(db) is False
    assert not permissions.installed(db)
    assert "hasPermission" not in vars(db.security)


# -- hasSearchPermission ---------------------------------------------------------


def search_questions(db: Any) -> Iterator[tuple[str, str, str]]:
    """(userid, classname, property): every property of every class, a
    transitive one per Link, one that does not exist, for every user and a
    user id that does not exist."""
    for userid in [*db.user.list(), "999"]:
        for classname in sorted(db.classes):
            cl = db.getclass(classname)
            for name, prop in sorted(cl.getprops().items()):
                yield (userid, classname, name)
                target = getattr(prop, "classname", None)
                if target is not None:
                    label = db.getclass(target).labelprop()
                    yield (userid, classname, f"{name}.{label}")
                    yield (userid, classname, f"{name}.nonexistent")
            yield (userid, classname, "nonexistent")


def answer(db: Any, question: tuple[str, str, str]) -> tuple[str, Any]:
    try:
        return ("answered", db.security.hasSearchPermission(*question))
    except Exception as error:
        return ("raised", type(error))


@needs_support
def test_every_search_answer_is_roundups(databases: Callable[[str], Any]) -> None:
    ours, stock = databases("admin"), databases("admin")
    assert permissions.install(ours)
    asked = 0
    for _ in range(2):
        for question in search_questions(stock):
            assert answer(ours, question) == answer(stock, question), question
            asked += 1
    assert asked > 300
    assert_same_cache_effects(ours, stock)


@needs_support
def test_a_role_or_permission_change_is_seen_at_once(
    databases: Callable[[str], Any],
) -> None:
    db = databases("admin")
    assert permissions.install(db)
    anonymous = db.user.lookup("anonymous")
    assert not db.security.hasSearchPermission(anonymous, "query", "name")
    db.security.addPermissionToRole("Anonymous", "View", "query")
    assert db.security.hasSearchPermission(anonymous, "query", "name")
    demo = db.user.lookup("demo")
    assert db.security.hasSearchPermission(demo, "issue", "title")
    db.user.set(demo, roles="Anonymous")
    assert db.security.hasSearchPermission(demo, "query", "name")
    db.user.set(demo, roles="")
    assert not db.security.hasSearchPermission(demo, "issue", "title")


@needs_support
def test_not_installed_over_a_replaced_search_method(
    databases: Callable[[str], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = databases("admin")
    mine.security.hasSearchPermission = lambda *args: 1
    assert not permissions.install(mine)
    monkeypatch.setattr(Security, "roleHasSearchPermission", lambda *a: 1)
    assert not permissions.install(databases("admin"))
