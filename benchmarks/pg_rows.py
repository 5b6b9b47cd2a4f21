"""PostgreSQL rows of ``python -m benchmarks --postgresql``.

The benchmark tracker (``benchmarks/seed.py``, ``--issues`` issues) is built
on a throw-away PostgreSQL (``tests/helpers/pg.py``: Debian's PostgreSQL
15, ``fsync=off``, on 127.0.0.1); every server (stock, ours, ours with
``reuse_db`` off) serves its own copy of the tracker's directory, all on
that one database, so the sides read the same rows.  Its ``[web]
csrf_enforce_token`` is ``no`` (for every side), so that wrk can send one
form ``POST`` again and again (Roundup's CSRF token is good for one use);
the Referer and Origin checks stay on.

:func:`count_statements` counts, in one process, the SQL statements (at
psycopg2's cursor) and connections one warm request sends, stock and
ours, and what opening Roundup's database costs per request
(:func:`opening_cost`).
"""

from __future__ import annotations

import http.cookiejar
import statistics
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))

from helpers import pg  # type: ignore[import-not-found]  # noqa: E402

from . import seed  # noqa: E402
from .wsgicall import run_app  # noqa: E402

#: The database name of the benchmark tracker.
DATABASE = "roundup_bench_pg"
#: The form POST wrk sends (a new issue; Roundup answers 302 to it).
FORM_BODY = urllib.parse.urlencode(
    {
        "@action": "new",
        "@template": "item",
        "title": "benchmark form issue",
        "priority": "3",
    }
)


def build_template(server: pg.PostgresServer, home: Path, issues: int) -> None:
    """The seeded benchmark tracker at ``home`` on ``server`` (a 1 KiB
    attachment instead of the big one: no download rows here)."""
    from roundup.configuration import CoreConfig

    settings: dict[str, str | int] = dict(server.rdbms_settings(DATABASE))
    seed.build_tracker(home, issues, 1024, backend="postgresql", settings=settings)
    config = CoreConfig(str(home))
    config["WEB_CSRF_ENFORCE_TOKEN"] = "no"
    config.save(str(home / "config.ini"))


def login_cookie(base_url: str) -> str:
    """``Cookie`` header value of a session of ``admin`` (a form login)."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(jar)
    )
    data = urllib.parse.urlencode(
        {
            "@action": "login",
            "__login_name": "admin",
            "__login_password": seed.ADMIN_PASSWORD,
        }
    ).encode()
    request = urllib.request.Request(
        base_url,
        data=data,
        headers={"Referer": base_url, "Origin": base_url.rstrip("/")},
    )
    with opener.open(request, timeout=120) as response:
        response.read()
    cookies = [f"{c.name}={c.value}" for c in jar if "session" in c.name]
    if not cookies:
        raise SystemExit(f"benchmarks: the login on {base_url} set no session cookie")
    return "; ".join(cookies)


def form_headers(base_url: str, cookie: str) -> dict[str, str]:
    """Headers of the form POST (a browser's)."""
    return {
        "Cookie": cookie,
        "Content-Type": "application/x-www-form-urlencoded",
        "Referer": base_url + "issue?@template=item",
        "Origin": base_url.rstrip("/"),
    }


class _Counter:
    statements = 0
    connections = 0
    connect_seconds = 0.0


@contextmanager
def counting() -> Iterator[type[_Counter]]:
    """Count statements (every cursor's ``execute``) and connections (and
    the seconds ``psycopg2.connect`` took) of the connections opened inside."""
    import psycopg2
    import psycopg2.extensions

    class Cursor(psycopg2.extensions.cursor):
        def execute(self, query: Any, vars: Any = None) -> Any:
            _Counter.statements += 1
            return super().execute(query, vars)

    connect = psycopg2.connect

    def counting_connect(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("cursor_factory", Cursor)
        start = time.perf_counter()
        try:
            return connect(*args, **kwargs)
        finally:
            _Counter.connections += 1
            _Counter.connect_seconds += time.perf_counter() - start

    psycopg2.connect = counting_connect
    try:
        yield _Counter
    finally:
        psycopg2.connect = connect


@dataclass
class Count:
    """One request, counted on a warm thread: medians per request for stock,
    ours with ``node_cache`` off (database reuse only) and ours."""

    label: str
    #: Side ("stock", "reuse only", "ours") -> statements per request.
    statements: dict[str, float]
    #: Side -> connections opened per request.
    connections: dict[str, float]
    #: Side -> CPU milliseconds of this process per request (PostgreSQL's
    #: own not counted).
    cpu_ms: dict[str, float]


def _environ(path: str, cookie: str = "") -> dict[str, Any]:
    from wsgiref.util import setup_testing_defaults

    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/" + path.split("?")[0],
        "QUERY_STRING": path.partition("?")[2],
        "HTTP_HOST": "127.0.0.1",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
    }
    if cookie:
        environ["HTTP_COOKIE"] = cookie
    setup_testing_defaults(environ)
    return environ


def count_statements(home: Path, paths: list[str], repeat: int = 5) -> list[Count]:
    """Statements, connections and CPU time per warm request of each of
    ``paths`` (anonymous GETs): stock's dispatcher, ours with
    ``node_cache`` off and ours, on ``home``, in this process; the medians
    of ``repeat`` requests after two warm-ups."""
    from roundup.cgi.wsgi_handler import RequestDispatcher as Stock

    from roundup_wsgi import RequestDispatcher

    rows = []
    with counting() as counter:
        ours = RequestDispatcher(str(home))
        reuse_only = RequestDispatcher(str(home), node_cache=False)
        sides = (
            ("stock", Stock(str(home))),
            ("reuse only", reuse_only),
            ("ours", ours),
        )
        for path in paths:
            row = Count(f"GET /{path}", {}, {}, {})
            for name, app in sides:
                statements, connections, times = [], [], []
                for number in range(repeat + 2):
                    s0, c0 = counter.statements, counter.connections
                    start = time.process_time()
                    status = run_app(app, _environ(path))
                    took = time.process_time() - start
                    if not status or not status[-1].startswith("200"):
                        raise SystemExit(f"benchmarks: {name} {path} answered {status}")
                    if number >= 2:
                        statements.append(counter.statements - s0)
                        connections.append(counter.connections - c0)
                        times.append(took * 1e3)
                row.statements[name] = statistics.median(statements)
                row.connections[name] = statistics.median(connections)
                row.cpu_ms[name] = statistics.median(times)
            rows.append(row)
        for app in (ours, reuse_only):
            assert app.db_pool is not None
            app.db_pool.close_all()
    return rows


def opening_cost(home: Path, rounds: int = 30) -> dict[str, float]:
    """What opening and closing Roundup's database costs, as stock does per
    request: ``Tracker.open`` (schema.py, detectors, connect, ``SET``,
    schema version check) then the sessions and one-time keys connections
    a page opens, and ``close`` (rollback); statements, connections and
    milliseconds per open, medians over ``rounds``.  Ours keeps it."""
    from roundup import instance

    tracker = instance.open(str(home))
    times, statements, connect_ms, connections = [], [], [], []
    with counting() as counter:
        for _ in range(rounds + 2):
            s0, c0, t0 = (
                counter.statements,
                counter.connections,
                counter.connect_seconds,
            )
            start = time.perf_counter()
            db = tracker.open("anonymous")
            db.getOTKManager().exists("x")  # as a page's CSRF nonce does
            db.getSessionManager().exists("x")  # as a page's session lookup
            db.close()
            times.append((time.perf_counter() - start) * 1e3)
            statements.append(counter.statements - s0)
            connections.append(counter.connections - c0)
            connect_ms.append((counter.connect_seconds - t0) * 1e3)
    return {
        "ms per open and close": statistics.median(times[2:]),
        "of which connecting, ms": statistics.median(connect_ms[2:]),
        "connections": statistics.median(connections[2:]),
        "statements": statistics.median(statements[2:]),
    }


def render_counts(rows: list[Count]) -> str:
    """The statement table."""
    sides = ("stock", "reuse only", "ours")
    lines = [
        "warm request, in process: stock / ours with node_cache off (reuse "
        "only) / ours",
    ]
    for row in rows:
        lines.append(
            f"{row.label:<12} statements "
            + "/".join(f"{row.statements[s]:.0f}" for s in sides)
            + ", connections "
            + "/".join(f"{row.connections[s]:.0f}" for s in sides)
            + ", client CPU ms "
            + "/".join(f"{row.cpu_ms[s]:.1f}" for s in sides)
        )
    return "\n".join(lines)
