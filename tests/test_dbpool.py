"""Database reuse per worker thread (``reuse_db``, roundup_wsgi/dbpool.py):
what one request changes is seen by the next request on the same thread,
what it did not commit is not, and a database that failed or whose tracker
changed is opened anew.

Every test runs its requests in-process on one thread (webtest), so each
request after the first gets the database the previous one left.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from wsgiref.validate import validator

import pytest
import roundup.instance
from helpers import seeded
from helpers.wsgi import SAME_ORIGIN
from roundup import password
from roundup.configuration import CoreConfig
from webtest import TestApp

import roundup_wsgi.dispatcher as dispatcher_module
from roundup_wsgi import RequestDispatcher
from roundup_wsgi.dbpool import DatabasePool, reuse_refused

WEB = "http://localhost/"

#: interfaces.py hooks: "test-leak" creates an issue and never commits;
#: "test-count" answers the number of issues the request's database sees.
INTERFACES_PY = (
    seeded.INTERFACES_PY
    + """

class Client(Client):
    def inner_main(self):
        if self.path in ("test-leak", "test-count"):
            self.determine_user()
            if self.path == "test-leak":
                self.db.issue.create(title="never committed")
            body = str(len(self.db.issue.list())).encode()
            self.request.start_response([("Content-Type", "text/plain")], 200)
            self.request.wfile.write(body)
            return None
        return client.Client.inner_main(self)
"""
)


@pytest.fixture
def home(make_tracker: Callable[[str], Path]) -> Path:
    home = make_tracker(WEB)
    (home / "interfaces.py").write_text(INTERFACES_PY)
    return home


@pytest.fixture
def dispatcher(home: Path) -> Iterator[RequestDispatcher]:
    dispatcher = RequestDispatcher(str(home))
    yield dispatcher
    assert dispatcher.db_pool is not None
    dispatcher.db_pool.close_all()


@pytest.fixture
def app(dispatcher: RequestDispatcher) -> TestApp:
    return TestApp(validator(dispatcher), extra_environ={"HTTP_HOST": "localhost"})


def edit(home: Path, **changes: object) -> None:
    """Change user ``demo`` with Roundup's API, committed (another process)."""
    db = roundup.instance.open(str(home)).open("admin")
    try:
        demo = db.user.lookup(seeded.DEMO_USER)
        if changes.pop("retire", False):
            db.user.retire(demo)
        if changes:
            db.user.set(demo, **changes)
        db.commit()
    finally:
        db.close()


def stats(dispatcher: RequestDispatcher) -> dict[str, int]:
    assert dispatcher.db_pool is not None
    return dispatcher.db_pool.stats


REST_ISSUE = "/rest/data/issue/1"


def test_the_database_is_reused_on_the_same_thread(
    app: TestApp, dispatcher: RequestDispatcher
) -> None:
    for path in ("/issue1", "/issue", "/user1", "/issue1"):
        app.get(path)
    assert stats(dispatcher) == {"opened": 1, "reused": 3, "discarded": 0}


@pytest.mark.parametrize(
    "steps",
    [
        # No "Rest Access" with the role Anonymous; back with User.
        pytest.param(
            [({"roles": "Anonymous"}, 403), ({"roles": "User"}, 200)], id="role"
        ),
        pytest.param([({"retire": True}, 401)], id="retired"),
    ],
)
def test_a_user_change_takes_effect_on_the_next_request(
    app: TestApp,
    dispatcher: RequestDispatcher,
    home: Path,
    steps: list[tuple[dict[str, object], int]],
) -> None:
    """A role change, or the user retired: each ``edit`` of the demo user
    is seen by the very next request (``status``) on the same database."""
    demo = seeded.basic_auth(seeded.DEMO_USER, seeded.DEMO_PASSWORD)
    app.get(REST_ISSUE, headers=demo, status=200)
    for change, status in steps:
        edit(home, **change)
        app.get(REST_ISSUE, headers=demo, status=status)
    assert stats(dispatcher)["opened"] == 1


def test_a_password_change_takes_effect_on_the_next_request(
    app: TestApp, dispatcher: RequestDispatcher, home: Path
) -> None:
    old = seeded.basic_auth(seeded.DEMO_USER, seeded.DEMO_PASSWORD)
    app.get(REST_ISSUE, headers=old, status=200)
    db = roundup.instance.open(str(home)).open("admin")
    try:
        new_password = password.Password("a-new-secret", config=db.config)
    finally:
        db.close()
    edit(home, password=new_password)
    app.get(REST_ISSUE, headers=old, status=401)
    app.get(
        REST_ISSUE,
        headers=seeded.basic_auth(seeded.DEMO_USER, "a-new-secret"),
        status=200,
    )
    assert stats(dispatcher)["opened"] == 1


def test_a_logout_takes_effect_on_the_next_request(
    app: TestApp, dispatcher: RequestDispatcher
) -> None:
    page = app.get("/")
    form = next(f for f in page.forms.values() if "__login_name" in f.fields)
    form["__login_name"] = seeded.DEMO_USER
    form["__login_password"] = seeded.DEMO_PASSWORD
    response = form.submit(headers=SAME_ORIGIN)
    assert response.status_int == 302
    assert b"Hello, demo" in app.get("/").body
    app.get("/?@action=logout", headers=SAME_ORIGIN)
    page = app.get("/")
    assert b"Hello, demo" not in page.body
    assert any("__login_name" in f.fields for f in page.forms.values())
    assert stats(dispatcher)["opened"] == 1


def test_a_change_by_another_process_is_seen_by_the_next_request(
    app: TestApp, home: Path
) -> None:
    assert b"Sample issue one" in app.get("/issue1").body
    db = roundup.instance.open(str(home)).open("admin")
    try:
        db.issue.set("1", title="Renamed elsewhere")
        db.commit()
    finally:
        db.close()
    assert b"Renamed elsewhere" in app.get("/issue1").body


def test_what_a_request_did_not_commit_is_never_seen(
    app: TestApp, dispatcher: RequestDispatcher, home: Path
) -> None:
    count = int(app.get("/test-count").text)
    assert int(app.get("/test-leak").text) == count + 1  # its own write
    assert int(app.get("/test-count").text) == count  # rolled back
    assert stats(dispatcher) == {"opened": 1, "reused": 2, "discarded": 0}
    # ...and no lock is left: another connection writes at once.
    db = roundup.instance.open(str(home)).open("admin")
    try:
        db.config.RDBMS_SQLITE_TIMEOUT = 1
        db.issue.create(title="written elsewhere")
        db.commit()
        assert len(db.issue.list()) == count + 1
    finally:
        db.close()


def test_an_exception_discards_the_database(
    app: TestApp, dispatcher: RequestDispatcher
) -> None:
    app.get("/issue1")
    app.get("/test-boom", status=500)  # raised in the tracker's Client.main
    app.get("/issue1")
    assert stats(dispatcher) == {"opened": 2, "reused": 1, "discarded": 1}


def test_a_locked_database_answers_503_is_discarded_then_works(
    home: Path,
) -> None:
    config = CoreConfig(str(home))
    config["RDBMS_SQLITE_TIMEOUT"] = 1
    config.save(str(home / "config.ini"))
    dispatcher = RequestDispatcher(str(home))
    app = TestApp(validator(dispatcher), extra_environ={"HTTP_HOST": "localhost"})
    app.get("/issue1")
    headers = {
        **seeded.basic_auth("admin", seeded.ADMIN_PASSWORD),
        **SAME_ORIGIN,
        "X-Requested-With": "rest",
    }
    lock = sqlite3.connect(str(home / "db" / "db"), isolation_level=None)
    try:
        lock.execute("BEGIN EXCLUSIVE")
        app.post_json("/rest/data/issue", {"title": "x"}, headers=headers, status=503)
        lock.execute("ROLLBACK")
    finally:
        lock.close()
    assert stats(dispatcher) == {"opened": 1, "reused": 1, "discarded": 1}
    app.post_json("/rest/data/issue", {"title": "x"}, headers=headers, status=201)
    app.get("/issue1", status=200)
    assert stats(dispatcher) == {"opened": 2, "reused": 2, "discarded": 1}


@pytest.mark.skipif(
    dispatcher_module.ROUNDUP_ALWAYS_CACHES,
    reason="this Roundup always caches the tracker: schema.py is read once",
)
def test_a_changed_schema_opens_the_database_anew(home: Path) -> None:
    dispatcher = RequestDispatcher(str(home), feature_flags={"cache_tracker": False})
    app = TestApp(validator(dispatcher), extra_environ={"HTTP_HOST": "localhost"})
    app.get(REST_ISSUE, status=403)  # anonymous: no "Rest Access"
    schema = home / "schema.py"
    schema.write_text(
        schema.read_text()
        + "\ndb.security.addPermissionToRole('Anonymous', 'Rest Access')\n"
    )
    later = time.time() + 5
    os.utime(schema, (later, later))
    app.get(REST_ISSUE, status=200)
    assert stats(dispatcher) == {"opened": 2, "reused": 0, "discarded": 1}


def test_an_idle_database_is_opened_anew(home: Path) -> None:
    dispatcher = RequestDispatcher(str(home))
    assert dispatcher.db_pool is not None
    dispatcher.db_pool.idle_limit = 0.0
    app = TestApp(validator(dispatcher), extra_environ={"HTTP_HOST": "localhost"})
    app.get("/issue1")
    time.sleep(0.01)
    app.get("/issue1")
    # Closed by the next request (discarded) or the reaper (released) first.
    assert stats(dispatcher)["opened"] == 2
    assert stats(dispatcher)["reused"] == 0


def test_debug_mode_and_the_option_off_open_a_database_per_request(
    home: Path,
) -> None:
    debug = RequestDispatcher(str(home), debug=True)
    assert (
        reuse_refused(debug.tracker) == "the tracker is in debug mode (not optimised)"
    )
    TestApp(debug, extra_environ={"HTTP_HOST": "localhost"}).get("/issue1")
    assert stats(debug) == {"opened": 0, "reused": 0, "discarded": 0}
    off = RequestDispatcher(str(home), reuse_db=False)
    assert off.db_pool is None
    TestApp(off, extra_environ={"HTTP_HOST": "localhost"}).get("/issue1")


def test_pages_are_the_same_with_and_without_reuse(home: Path) -> None:
    on = TestApp(RequestDispatcher(str(home)), extra_environ={"HTTP_HOST": "localhost"})
    off = TestApp(
        RequestDispatcher(str(home), reuse_db=False),
        extra_environ={"HTTP_HOST": "localhost"},
    )
    demo = seeded.basic_auth(seeded.DEMO_USER, seeded.DEMO_PASSWORD)
    for path, headers in [
        ("/issue1", {}),
        ("/issue", {}),
        ("/issue1", demo),
        (REST_ISSUE, demo),
        ("/user?@template=index", demo),
        ("/issue", {}),
    ]:
        a = on.get(path, headers=headers, expect_errors=True)
        b = off.get(path, headers=headers, expect_errors=True)
        assert a.status == b.status, path
        assert seeded_norm(a.body) == seeded_norm(b.body), path


def seeded_norm(body: bytes) -> bytes:
    """Drop what differs between any two requests (CSRF tokens, nonces)."""
    body = re.sub(rb'name="@csrf" type="hidden"\s+value="[^"]*"', b"", body)
    return re.sub(rb'nonce="[^"]*"', b"", body)


def test_pool_without_sql_backend_is_refused() -> None:
    class Tracker:
        optimize = True
        backend = type("back_anydbm", (), {"Database": object})

    assert reuse_refused(Tracker()) == "backend back_anydbm is not an SQL backend"
    assert DatabasePool("/nonexistent").refused(Tracker()) is not None


@pytest.mark.slow
def test_postgresql_restart_the_next_request_reconnects(tmp_path: Path) -> None:
    """The kept connections die with the server; the next request after the
    restart sees that (data waiting on an idle socket) and opens anew: 200,
    not a 503.  While stopped: 503 with Retry-After, as without reuse."""
    from helpers import pg

    with pg.running_postgres(tmp_path / "pg") as postgres:
        home = pg.create_pg_tracker(
            postgres,
            tmp_path / "tracker",
            "roundup_dbpool",
            admin_password=seeded.ADMIN_PASSWORD,
            web=WEB,
        )
        dispatcher = RequestDispatcher(str(home))
        app = TestApp(validator(dispatcher), extra_environ={"HTTP_HOST": "localhost"})
        admin = seeded.basic_auth("admin", seeded.ADMIN_PASSWORD)
        headers = {**admin, **SAME_ORIGIN, "X-Requested-With": "rest"}
        app.post_json("/rest/data/issue", {"title": "one"}, headers=headers, status=201)
        app.get("/issue1", status=200)
        assert stats(dispatcher) == {"opened": 1, "reused": 1, "discarded": 0}

        postgres.stop()
        postgres.start()
        app.get("/issue1", status=200)
        assert stats(dispatcher) == {"opened": 2, "reused": 1, "discarded": 1}

        postgres.stop()
        stopped = app.get("/issue1", status=503)
        assert stopped.headers["Retry-After"]
        postgres.start()
        app.get("/issue1", status=200)
        app.post_json("/rest/data/issue", {"title": "two"}, headers=headers, status=201)
        assert b"two" in app.get("/issue2", headers=admin).body
        dispatcher.db_pool.close_all()  # type: ignore[union-attr]


def test_a_thread_that_ends_has_its_database_closed(
    app: TestApp, dispatcher: RequestDispatcher
) -> None:
    """Servers that start a thread per request (wsgiref's ThreadingMixIn):
    each thread's kept database is closed once the thread is gone, not when
    the garbage collector gets to it (database connections would pile up)."""
    answered: list[int] = []
    for _ in range(3):
        worker = threading.Thread(
            target=lambda: answered.append(app.get("/").status_int)
        )
        worker.start()
        worker.join()
        del worker  # the Thread object goes: its finalizer closes the database
    assert answered == [200, 200, 200]
    assert stats(dispatcher) == {"opened": 3, "reused": 0, "discarded": 3}


def db_files_open(home: Path) -> int:
    """File descriptors of this process open on the tracker's db/ files."""
    directory = str(home / "db") + os.sep
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        count += target.startswith(directory)
    return count


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_a_thread_started_outside_threading_has_its_database_closed(
    app: TestApp, dispatcher: RequestDispatcher, home: Path
) -> None:
    """granian's and other C-level threads are ``_DummyThread`` objects that
    never leave ``threading._active``: their database is closed as the
    thread ends (its thread-local storage is cleared), on that thread."""
    import _thread

    answered: list[int] = []
    for _ in range(3):
        done = threading.Event()

        def run(done: threading.Event = done) -> None:
            try:
                answered.append(app.get("/issue1").status_int)
            finally:
                done.set()

        _thread.start_new_thread(run, ())
        assert done.wait(60)
    assert wait_for(lambda: stats(dispatcher)["discarded"] == 3)
    assert answered == [200, 200, 200]
    assert stats(dispatcher) == {"opened": 3, "reused": 0, "discarded": 3}


def test_thread_churn_keeps_at_most_max_and_closes_idle_ones(
    home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Threads come and go (``threading`` and C-level ones) while requests
    run concurrently: every answer is 200, at most ``reuse_db_max``
    databases are kept, no sqlite connection is touched by another thread
    (no ProgrammingError, logged or raised), and once idle for
    ``reuse_db_idle`` (x 1.5) every database file is closed."""
    import _thread

    dispatcher = RequestDispatcher(str(home), reuse_db_max=2, reuse_db_idle=0.3)
    pool = dispatcher.db_pool
    assert pool is not None
    app = TestApp(dispatcher, extra_environ={"HTTP_HOST": "localhost"})
    caplog.set_level("DEBUG", logger="roundup_wsgi")
    answers: list[int] = []
    kept: list[int] = []
    errors: list[BaseException] = []

    def work(done: threading.Event, leave: threading.Event) -> None:
        try:
            for path in ("/issue1", "/issue", "/issue1"):
                answers.append(app.get(path).status_int)
                kept.append(pool.kept_count())
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()
        leave.wait(60)  # all six threads live (and keep) until the round ends

    for round_ in range(3):
        leave = threading.Event()
        events = [threading.Event() for _ in range(6)]
        for number, event in enumerate(events):
            if number % 2:
                _thread.start_new_thread(work, (event, leave))
            else:
                threading.Thread(target=work, args=(event, leave)).start()
        assert all(event.wait(60) for event in events)
        leave.set()
        if round_ == 1:
            time.sleep(0.6)  # idle: the reaper closes what is kept
    assert not errors
    assert answers == [200] * 54
    assert max(kept) <= 2
    assert wait_for(lambda: pool.kept_count() == 0 and db_files_open(home) == 0)
    assert not [r for r in caplog.records if "ProgrammingError" in r.getMessage()]
    assert not [
        r
        for r in caplog.records
        if r.exc_info and isinstance(r.exc_info[1], sqlite3.ProgrammingError)
    ]
    # Over reuse_db_max the least recently used database is closed (its
    # sqlite connections may be closed from another thread), none is left
    # to the garbage collector.
    assert pool.not_kept == 0
    assert pool.released == 0
    # After idle the next request opens anew and answers.
    app.get("/issue1", status=200)
    pool.close_all()


def test_the_reaper_closes_an_idle_threads_sqlite_connections(home: Path) -> None:
    """The reaper closes the connections of a database kept by a thread
    that is alive but idle (``close``, on the reaper's thread), instead of
    dropping them for the garbage collector (Python 3.13: ``ResourceWarning:
    unclosed database``); the thread then opens a new one."""
    import gc
    import warnings

    from roundup_wsgi.dbrecycle import connections as _connections

    dispatcher = RequestDispatcher(str(home), reuse_db_idle=0.1)
    pool = dispatcher.db_pool
    assert pool is not None
    app = TestApp(dispatcher, extra_environ={"HTTP_HOST": "localhost"})
    conns: list[sqlite3.Connection] = []
    answers: list[int] = []
    served, leave, again = threading.Event(), threading.Event(), threading.Event()

    def worker() -> None:
        answers.append(app.get("/issue1").status_int)
        kept = pool._slot().kept
        assert kept is not None
        conns.extend(_connections(kept.db))
        served.set()
        leave.wait(60)  # alive and idle while the reaper runs
        answers.append(app.get("/issue1").status_int)
        again.set()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        thread = threading.Thread(target=worker)
        thread.start()
        assert served.wait(60)
        # The reaper takes the database out of the pool, then closes it:
        # wait for the pass to end (the reaper ends with nothing kept), so
        # no connection below is used while the reaper closes it.
        reaper = pool._reaper
        assert reaper is not None
        reaper.join(60)
        assert not reaper.is_alive()
        assert pool.kept_count() == 0
        assert len(conns) >= 2  # the database's and the one-time keys'
        for conn in conns:
            with pytest.raises(sqlite3.ProgrammingError, match="closed database"):
                conn.execute("SELECT 1")
        leave.set()
        assert again.wait(60)
        thread.join()
        del conns[:]
        pool.close_all()
        gc.collect()
    assert answers == [200, 200]
    assert pool.released == 0
    assert stats(dispatcher)["opened"] == 2
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


def test_reuse_db_max_zero_keeps_none(home: Path) -> None:
    dispatcher = RequestDispatcher(str(home), reuse_db_max=0)
    app = TestApp(dispatcher, extra_environ={"HTTP_HOST": "localhost"})
    app.get("/issue1")
    app.get("/issue1")
    assert stats(dispatcher) == {"opened": 2, "reused": 0, "discarded": 2}
    assert db_files_open(home) == 0


@pytest.mark.parametrize(
    "options", [{"reuse_db_max": -1}, {"reuse_db_idle": -1.0}], ids=str
)
def test_negative_bounds_are_refused(home: Path, options: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(options))):
        RequestDispatcher(str(home), **options)  # type: ignore[arg-type]
