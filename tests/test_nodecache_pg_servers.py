"""The kept node cache on PostgreSQL under real servers (roundup_wsgi/nodecache.py,
roundup_wsgi/pgversion.py): one host serves pages (waitress,
4 threads, or gunicorn, 2 sync workers, each thread or worker with its own
kept database) while writes come from another host (gunicorn on 127.0.1.2
with ``deploy/gunicorn.conf.py``, a REST ``PUT``), another process
(``roundup-admin set``) and raw SQL; after every write, every following
page on every thread and worker shows the new value.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from helpers import pg, seeded
from helpers.cluster import HOST_ADDRESSES, AppHost, free_port_on
from helpers.servers import (
    OUR_APP,
    LocalSession,
    ServerProcess,
    free_port,
    gunicorn_command,
    waitress_command,
)
from test_nodecache_pg import admin_set, raw_sql, seed_pg_tracker
from test_nodecache_servers import concurrent_pages

from roundup_wsgi import pgversion
from roundup_wsgi.tracker import set_tracker_web

pytestmark = pytest.mark.slow

#: Concurrent page requests after each write (more than the threads and
#: workers, so that every one of them answers some).


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pg.PostgresServer]:
    with pg.running_postgres(tmp_path_factory.mktemp("pg-nodecache-srv")) as server:
        yield server


@pytest.mark.parametrize(
    "command",
    [waitress_command, gunicorn_command],
    ids=["waitress", "gunicorn"],
)
def test_every_thread_sees_every_write_at_once(
    command: Callable[[int, str], list[str]],
    postgres: pg.PostgresServer,
    tmp_path: Path,
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    home = seed_pg_tracker(postgres, tmp_path / "reader", base + "/")
    other_port = free_port_on(HOST_ADDRESSES[1:2])
    other = AppHost(
        "app2",
        HOST_ADDRESSES[1],
        other_port,
        tmp_path / "writer",
        tmp_path / "hosts",
    )
    # The second host: the same database, its own copy of the tracker.
    subprocess.run(
        ["cp", "-a", str(home), str(other.home)], check=True, capture_output=True
    )
    set_tracker_web(other.home, other.url)
    server = ServerProcess(
        command(port, OUR_APP),
        port,
        tmp_path / "logs",
        env={"ROUNDUP_TRACKER_HOME": str(home)},
        name="nodecache-pg",
    )
    session = LocalSession()
    admin = ("admin", seeded.ADMIN_PASSWORD)

    def all_pages(path: str) -> list[str]:
        return concurrent_pages(session, base + path)

    def every_page_shows(title: str) -> None:
        for body in all_pages("/issue") + all_pages("/issue1"):
            assert title in body

    with ExitStack() as stack:
        stack.callback(other.cleanup)
        other.start()
        stack.enter_context(server)
        every_page_shows("Sample issue one")
        for round_ in range(2):
            title = f"Set by roundup-admin {round_}"
            admin_set(home, title)
            every_page_shows(title)

            rest = session.get(other.url + "rest/data/issue/1", auth=admin)
            assert rest.status_code == 200, rest.text[:300]
            title = f"Written on the other host {round_}"
            answer = session.put(
                other.url + "rest/data/issue/1/title",
                json={"data": title},
                auth=admin,
                headers={
                    "If-Match": rest.headers["ETag"],
                    "X-Requested-With": "rest",
                    "Origin": other.url.rstrip("/"),
                    "Referer": other.url,
                },
            )
            assert answer.status_code == 200, answer.text[:300]
            every_page_shows(title)

            title = f"Raw SQL {round_}"
            raw_sql(
                postgres, home, f"UPDATE _issue SET _title = '{title}' WHERE id = 1"
            )
            every_page_shows(title)
        assert not server.stopped, server.log_tail()
    # The hosts ran with the write counter installed, and it counted the
    # writes of roundup-admin, the other host and raw SQL (2 rounds of 3).
    with pg.tracker_connection(postgres, home) as conn, conn.cursor() as cursor:
        cursor.execute(f"SELECT sum(n) FROM {pgversion.TABLE}")
        assert cursor.fetchone()[0] >= 6
