"""The node cache kept between requests (roundup_wsgi/nodecache.py): an sqlite
database's hyperdb rows read by one request are given to the next request on
the same thread only when nothing can have changed.

Pages are compared with Roundup's own dispatcher (same status, same bytes
but for nonces, CSRF tokens and dates); a commit by another connection
(another process, another thread's database) is seen by the very next
request; what a request wrote, even a write that failed half-way, is never
seen by the next one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import roundup.instance
from helpers import seeded
from helpers.wsgi import REST_HEADERS, normalise_body
from roundup import date, i18n
from roundup.cgi.wsgi_handler import RequestDispatcher as StockDispatcher
from webtest import TestApp

from roundup_wsgi import RequestDispatcher, dbpool, nodecache

WEB = "http://localhost/"

#: interfaces.py hooks (paths): "test-title-N" answers issue N's title,
#: "test-nosy-1" issue1's nosy list; "test-set-title-1" sets issue1's title
#: and answers it (never committed); "test-commit-title-1-T" sets it to T
#: and commits; "test-bad-nosy-1" sets issue1's nosy to
#: its first entry and a user that does not exist, with journalling off
#: (Roundup edits the cached list, then raises IndexError before any SQL
#: write); "test-raw-2" updates issue2's title with raw SQL, then reads it.
INTERFACES_PY = (
    seeded.INTERFACES_PY
    + """

class Client(Client):
    def inner_main(self):
        path = self.path
        if not path.startswith("test-") or path == "test-boom":
            return client.Client.inner_main(self)
        self.determine_user()
        db = self.db
        if path.startswith("test-title-"):
            body = db.issue.get(path.rsplit("-", 1)[1], "title")
        elif path == "test-nosy-1":
            body = ",".join(db.issue.get("1", "nosy"))
        elif path == "test-set-title-1":
            db.issue.set("1", title="set, never committed")
            body = db.issue.get("1", "title")
        elif path.startswith("test-commit-title-1-"):
            db.issue.set("1", title=path.rsplit("-", 1)[1])
            db.commit()
            body = db.issue.get("1", "title")
        elif path == "test-bad-nosy-1":
            nosy = db.issue.get("1", "nosy")
            db.issue.disableJournalling()
            try:
                db.issue.set("1", nosy=nosy[:1] + ["999"])
            except IndexError:
                body = "IndexError"
            finally:
                db.issue.enableJournalling()
        elif path == "test-raw-2":
            db.sql(
                "update _issue set _title=%s where id=%s" % (db.arg, db.arg),
                ("raw", "2"),
            )
            body = db.issue.get("2", "title")
        else:
            body = "?"
        self.request.start_response([("Content-Type", "text/plain")], 200)
        self.request.wfile.write(body.encode())
        return None
"""
)


ADMIN = seeded.ADMIN_AUTH
DEMO = seeded.DEMO_AUTH


@pytest.fixture
def home(make_tracker: Callable[[str], Path]) -> Path:
    home = make_tracker(WEB)
    (home / "interfaces.py").write_text(INTERFACES_PY)
    db = roundup.instance.open(str(home)).open("admin")
    try:
        db.issue.set("1", nosy=["1", db.user.lookup(seeded.DEMO_USER)])
        db.commit()
    finally:
        db.close()
    return home


@pytest.fixture
def dispatcher(home: Path) -> Iterator[RequestDispatcher]:
    dispatcher = RequestDispatcher(str(home))
    yield dispatcher
    assert dispatcher.db_pool is not None
    dispatcher.db_pool.close_all()


@pytest.fixture
def ours(dispatcher: RequestDispatcher) -> TestApp:
    return TestApp(dispatcher, extra_environ={"HTTP_HOST": "localhost"})


@pytest.fixture
def stock(home: Path) -> TestApp:
    return TestApp(StockDispatcher(str(home)), extra_environ={"HTTP_HOST": "localhost"})


def pool(dispatcher: RequestDispatcher) -> dbpool.DatabasePool:
    assert dispatcher.db_pool is not None
    return dispatcher.db_pool


def compare(
    ours: TestApp, stock: TestApp, path: str, headers: dict[str, str] | None = None
) -> bytes:
    """The page from ours and from Roundup's dispatcher: same status, same
    bytes (but for nonces, CSRF tokens, dates); returns ours."""
    a = ours.get(path, headers=headers or {}, expect_errors=True)
    b = stock.get(path, headers=headers or {}, expect_errors=True)
    assert a.status == b.status, path
    assert normalise_body(a.body) == normalise_body(b.body), path
    return bytes(a.body)


def commit_elsewhere(home: Path, **title: str) -> None:
    """Set issue titles (``{"1": "..."}``) with another connection, committed."""
    db = roundup.instance.open(str(home)).open("admin")
    try:
        for issue, value in title.items():
            db.issue.set(issue.lstrip("_"), title=value)
        db.commit()
    finally:
        db.close()


PAGES = [
    ("/issue", {}),
    ("/issue1", {}),
    ("/issue", DEMO),
    ("/issue1", DEMO),
    ("/issue?@columns=title,status,assignedto,creator&@sort=-activity", DEMO),
    ("/user1", DEMO),
    ("/issue", ADMIN),
    ("/issue", {"Accept-Language": "de"}),
    ("/issue1", {"Accept-Language": "de"}),
    ("/rest/data/issue/1", DEMO),
    ("/issue", {}),
]


def test_pages_are_roundups_with_the_node_cache_kept(
    ours: TestApp, stock: TestApp, dispatcher: RequestDispatcher
) -> None:
    for _ in range(2):
        for path, headers in PAGES:
            compare(ours, stock, path, headers)
    # Every request but the first started with the previous one's rows.
    assert pool(dispatcher).nodes_kept == 2 * len(PAGES) - 1
    assert pool(dispatcher).stats["opened"] == 1


def test_the_next_page_reads_no_row_again(
    ours: TestApp, dispatcher: RequestDispatcher
) -> None:
    ours.get("/issue")
    kept = pool(dispatcher)._slot().kept
    assert kept is not None
    assert kept.nodes is not None
    assert ("issue", "1") in kept.nodes[0]
    misses = kept.db.stats["cache_misses"]
    assert misses > 0
    ours.get("/issue")
    assert kept.db.stats["cache_misses"] == misses


def test_a_commit_by_another_process_is_seen_by_the_next_request(
    ours: TestApp, stock: TestApp, home: Path
) -> None:
    assert b"Sample issue one" in compare(ours, stock, "/issue")
    assert ours.get("/test-title-1").text == "Sample issue one"
    commit_elsewhere(home, _1="Renamed elsewhere")
    assert ours.get("/test-title-1").text == "Renamed elsewhere"
    page = compare(ours, stock, "/issue")
    assert b"Renamed elsewhere" in page
    assert b"Sample issue one" not in page
    commit_elsewhere(home, _1="Renamed again")
    assert b"Renamed again" in compare(ours, stock, "/issue1")


def test_a_commit_by_another_thread_is_seen_by_the_next_request(
    dispatcher: RequestDispatcher, stock: TestApp
) -> None:
    """Two worker threads, each with its own kept database: what one
    commits (a REST POST, a title set by the tracker's code) is on the
    other's very next page."""
    commits_on_another_thread_are_seen(dispatcher, stock)


def commits_on_another_thread_are_seen(
    dispatcher: RequestDispatcher, stock: TestApp
) -> None:
    """The check of the test above, for any backend (also on PostgreSQL)."""
    reader_app = TestApp(dispatcher, extra_environ={"HTTP_HOST": "localhost"})
    writer_app = TestApp(dispatcher, extra_environ={"HTTP_HOST": "localhost"})
    writer_app.authorization = ("Basic", ("admin", seeded.ADMIN_PASSWORD))
    with (
        ThreadPoolExecutor(max_workers=1) as reader,
        ThreadPoolExecutor(max_workers=1) as writer,
    ):

        def read(path: str) -> bytes:
            return reader.submit(compare, reader_app, stock, path).result()

        def write(path: str) -> str:
            response = writer.submit(writer_app.get, path).result()
            return str(response.text)

        read("/issue")
        read("/issue1")
        for title in ("Renamed1", "Renamed2"):
            assert write(f"/test-commit-title-1-{title}") == title
            page = read("/issue")
            assert title.encode() in page
            assert b"Sample issue one" not in page
        posted = writer.submit(
            writer_app.post_json,
            "/rest/data/issue",
            {"title": "Posted on the writer thread"},
            headers=REST_HEADERS,
        ).result()
        assert posted.status_int == 201
        assert b"Posted on the writer thread" in read("/issue")
        assert b"Renamed2" in read("/issue1")
    assert pool(dispatcher).stats["opened"] == 2


def test_what_a_request_set_is_not_seen_by_the_next(
    ours: TestApp, stock: TestApp, dispatcher: RequestDispatcher
) -> None:
    compare(ours, stock, "/issue1")
    assert ours.get("/test-set-title-1").text == "set, never committed"
    kept = pool(dispatcher).nodes_kept
    assert ours.get("/test-title-1").text == "Sample issue one"
    assert pool(dispatcher).nodes_kept == kept  # started empty
    assert b"Sample issue one" in compare(ours, stock, "/issue1")


def test_a_set_that_failed_half_way_is_not_seen_by_the_next(
    ours: TestApp, dispatcher: RequestDispatcher
) -> None:
    """Roundup's ``set_inner`` removes the old entries from the cached
    Multilink list before it checks the new ones: the IndexError leaves no
    SQL write behind, only the edited row in the cache."""
    nosy = ours.get("/test-nosy-1").text
    assert nosy.count(",") == 1
    assert ours.get("/test-bad-nosy-1").text == "IndexError"
    assert ours.get("/test-nosy-1").text == nosy
    assert pool(dispatcher).stats == {"opened": 1, "reused": 2, "discarded": 0}


def test_a_raw_sql_write_is_not_seen_by_the_next(ours: TestApp) -> None:
    """A row read after an uncommitted ``UPDATE`` (no auditor fired) holds
    the uncommitted value: ``total_changes`` drops the cache."""
    assert ours.get("/test-raw-2").text == "raw"
    assert ours.get("/test-title-2").text == "Issue with a big attachment"


def test_an_error_answer_keeps_no_cache(
    ours: TestApp, dispatcher: RequestDispatcher
) -> None:
    ours.get("/issue1")
    ours.get("/test-boom", status=500)
    ours.get("/issue1")
    ours.get("/issue1")
    assert pool(dispatcher).nodes_kept == 2  # the 2nd and the 4th


def test_keep_nodes_off_starts_every_request_empty(
    ours: TestApp, stock: TestApp, dispatcher: RequestDispatcher
) -> None:
    pool(dispatcher).keep_nodes = False
    for path, headers in PAGES[:3]:
        compare(ours, stock, path, headers)
    assert pool(dispatcher).nodes_kept == 0


def test_a_locked_database_keeps_no_cache(
    ours: TestApp, home: Path, dispatcher: RequestDispatcher
) -> None:
    """Another connection holding the write lock: the next page still reads
    the committed rows (sqlite lets readers in), and once that connection
    commits, the change is seen."""
    ours.get("/issue1")
    lock = sqlite3.connect(str(home / "db" / "db"), isolation_level=None)
    try:
        lock.execute("BEGIN IMMEDIATE")
        lock.execute("update _issue set _title='locked write' where id='1'")
        assert ours.get("/test-title-1").text == "Sample issue one"
        lock.execute("COMMIT")
    finally:
        lock.close()
    assert ours.get("/test-title-1").text == "locked write"


def test_dates_get_back_their_translator() -> None:
    cache: dict[Any, Any] = {
        ("issue", "1"): {
            "activity": date.Date("2020-01-02.03:04:05"),
            "interval": date.Interval("1d"),
            "title": "x",
        }
    }
    node = cache[("issue", "1")]

    class German:
        def gettext(self, text: str) -> str:
            return "de:" + text

        def ngettext(self, one: str, many: str, n: int) -> str:
            return "de:" + (one if n == 1 else many)

    for name in ("activity", "interval"):
        node[name].setTranslator(German())
    nodecache.reset_translators(cache)
    for name in ("activity", "interval"):
        value = node[name]
        assert value.translator is i18n
        assert value._ == i18n.gettext
        assert value.ngettext == i18n.ngettext
