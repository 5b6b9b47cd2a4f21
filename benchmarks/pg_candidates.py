"""The evidence behind PostgreSQL's node-cache check (roundup_wsgi/pgversion.py).

Run from the repository root (test extras installed, Debian's PostgreSQL)::

    python -m benchmarks.pg_candidates [--requests 30]

On a throw-away PostgreSQL with a classic tracker it measures the three
candidate checks of issue 22:

* (a) ``pg_current_snapshot()`` unchanged between two requests (no xid
  assigned anywhere): how often it holds between anonymous ``GET /issue``
  pages (each stores a CSRF nonce in ``otks`` and commits), and between
  the same pages when nothing else happens at all;
* (b) the write counter of ``roundup_wsgi.pgversion``: how often a request
  started with the previous one's rows (the pool's ``nodes_kept``) over
  the same pages;
* (c) ``pg_stat_user_tables.n_tup_upd`` and ``pg_stat_database.xact_commit``
  read by another connection right after a committed ``UPDATE``: whether
  they show it at once, for writes 0.2 s apart (PostgreSQL 15 flushes a
  backend's statistics at most once a second).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))

from helpers import pg  # type: ignore[import-not-found]  # noqa: E402

from .wsgicall import run_app  # noqa: E402

DATABASE = "roundup_candidates"


def _connect(server: Any) -> Any:
    import psycopg2

    conn = psycopg2.connect(
        host=server.host, port=server.port, user=pg.SUPERUSER, dbname=DATABASE
    )
    conn.autocommit = True
    return conn


def _one(conn: Any, sql: str) -> Any:
    with conn.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()[0]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args(argv)
    from wsgiref.util import setup_testing_defaults

    from roundup import instance

    from roundup_wsgi import RequestDispatcher

    with (
        tempfile.TemporaryDirectory() as tmp,
        pg.running_postgres(Path(tmp) / "log") as server,
    ):
        home = Path(tmp) / "tracker"
        pg.create_pg_tracker(
            server, home, DATABASE, admin_password="x", web="http://127.0.0.1/"
        )
        db = instance.open(str(home)).open("admin")
        for number in range(20):
            db.issue.create(title=f"issue {number}", priority="3")
        db.commit()
        db.close()
        watcher = _connect(server)
        dispatcher = RequestDispatcher(str(home))
        assert dispatcher.db_pool is not None

        def page() -> None:
            environ: dict[str, Any] = {"PATH_INFO": "/issue", "HTTP_HOST": "127.0.0.1"}
            setup_testing_defaults(environ)
            status = run_app(dispatcher, environ)
            if not status or not status[-1].startswith("200"):
                raise SystemExit(f"pg_candidates: GET /issue answered {status}")

        page()
        same_snapshot = 0
        kept_before = dispatcher.db_pool.nodes_kept
        snapshot = _one(watcher, "SELECT pg_current_snapshot()::text")
        for _ in range(args.requests):
            page()
            now = _one(watcher, "SELECT pg_current_snapshot()::text")
            same_snapshot += now == snapshot
            snapshot = now
        kept = dispatcher.db_pool.nodes_kept - kept_before
        print(
            f"{args.requests} anonymous GET /issue in a row: (a) snapshot "
            f"unchanged {same_snapshot} times; (b) write counter unchanged "
            f"(request started with the previous rows) {kept} times"
        )
        idle_same = 0
        snapshot = _one(watcher, "SELECT pg_current_snapshot()::text")
        for _ in range(10):
            time.sleep(0.05)
            now = _one(watcher, "SELECT pg_current_snapshot()::text")
            idle_same += now == snapshot
            snapshot = now
        print(f"(a) with no request at all: snapshot unchanged {idle_same} of 10 times")

        writer = _connect(server)
        stale_rows = stale_commits = 0
        rounds = 10
        for number in range(rounds):
            time.sleep(0.2)  # writes 0.2 s apart, as a busy tracker's
            reader = _connect(server)
            updated = _one(
                reader,
                "SELECT n_tup_upd FROM pg_stat_user_tables WHERE relname = '_issue'",
            )
            commits = _one(
                reader,
                "SELECT xact_commit FROM pg_stat_database "
                "WHERE datname = current_database()",
            )
            reader.close()
            _one(
                writer,
                f"UPDATE _issue SET _title = 'stat {number}' WHERE id = 1 RETURNING id",
            )
            reader = _connect(server)
            stale_rows += (
                _one(
                    reader,
                    "SELECT n_tup_upd FROM pg_stat_user_tables "
                    "WHERE relname = '_issue'",
                )
                == updated
            )
            stale_commits += (
                _one(
                    reader,
                    "SELECT xact_commit FROM pg_stat_database "
                    "WHERE datname = current_database()",
                )
                == commits
            )
            reader.close()
        print(
            f"(c) {rounds} committed UPDATEs, read at once by a new connection: "
            f"n_tup_upd unchanged {stale_rows} times, xact_commit unchanged "
            f"{stale_commits} times"
        )
        writer.close()
        watcher.close()
        dispatcher.db_pool.close_all()


if __name__ == "__main__":
    main()
