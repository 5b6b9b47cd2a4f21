"""Database reuse under real servers whose threads grow, shrink and idle:
every answer is 200 and once idle for ``reuse_db_idle`` (x 1.5) no
database file is open (roundup_wsgi/dbpool.py, issue 24 item 1).  The
``reuse_db_max`` bound is tested in process (tests/test_dbpool.py): from
outside, sqlite's descriptors of closed connections, kept while another
connection locks the file, cannot be told from kept databases.  With
PostgreSQL (granian, waitress) each connection is seen in
``pg_stat_activity``, so that bound is checked too: during a burst at most
``reuse_db_max`` databases plus one per server thread, at most
``reuse_db_max`` between requests, none after idle.  Under ``ulimit -n
256`` (granian) bursts answer 200 and ``/-/ready`` fails its ``files``
check near the limit.

granian's blocking threads are started outside ``threading`` (their
``threading.current_thread()`` is a ``_DummyThread`` that never goes) and
end after an idle time: before the fix each kept one database open forever.
Then (some servers, some runs) a database stayed open after idle because
Roundup's template ``python:`` expressions kept the last request's database
in their globals (roundup_wsgi/patches/pythonexpr.py), and while one sqlite
connection of the process is open sqlite keeps the descriptors of every
closed one on the same file.
"""

from __future__ import annotations

import concurrent.futures
import os
import resource
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import pg, seeded
from helpers.servers import (
    OUR_APP,
    LocalSession,
    ServerProcess,
    free_port,
    granian_command,
    gunicorn_command,
    hypercorn_command,
    uwsgi_command,
    waitress_command,
)

pytestmark = pytest.mark.slow

#: The bounds the servers run with (short, so that the test is quick).
MAX_KEPT = 3
IDLE = 1.0
ENV = {"ROUNDUP_WSGI_REUSE_DB_MAX": str(MAX_KEPT), "ROUNDUP_WSGI_REUSE_DB_IDLE": "1"}
#: Seconds allowed beyond the bound: the reaper's collector pass, polling,
#: a busy machine.
SLACK = 3.0


#: Seconds granian's idle blocking threads live (its minimum).
GRANIAN_THREAD_IDLE = 5


def granian(port: int, app: str = OUR_APP) -> list[str]:
    """granian with blocking threads that end after 5 s idle (its minimum)."""
    return [
        *granian_command(port, app),
        "--blocking-threads-idle-timeout",
        str(GRANIAN_THREAD_IDLE),
    ]


def gunicorn_gthread(port: int) -> list[str]:
    command = gunicorn_command(port)
    command[command.index("-w") + 1] = "1"
    return [*command[:-1], "-k", "gthread", "--threads", "6", command[-1]]


SERVERS: dict[str, Callable[[int], list[str]]] = {
    "granian": granian,
    "waitress": lambda port: [
        *waitress_command(port)[:-2],
        "--threads=6",
        *waitress_command(port)[-1:],
    ],
    "gunicorn-gthread": gunicorn_gthread,
    "hypercorn": hypercorn_command,
    "uwsgi": lambda port: uwsgi_command(port, threads=6),
}


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants (gunicorn's and granian's workers)."""
    pids = [pid]
    for child in _children(pid):
        pids.extend(tree(child))
    return pids


def _children(pid: int) -> list[int]:
    found = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found.extend(int(c) for c in f.read().split())
        except OSError:
            continue
    return found


def db_files(pid: int, home: Path) -> int:
    """Open file descriptors on ``home/db/`` in the server's processes."""
    directory = str(home / "db") + os.sep
    count = 0
    for each in tree(pid):
        try:
            fds = os.listdir(f"/proc/{each}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                count += os.readlink(f"/proc/{each}/fd/{fd}").startswith(directory)
            except OSError:
                continue
    return count


def burst(url: str, size: int) -> list[int]:
    def get(_: int) -> int:
        with LocalSession() as session:
            return session.get(url + "issue1").status_code

    with concurrent.futures.ThreadPoolExecutor(size) as pool:
        return list(pool.map(get, range(size)))


def wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@pytest.mark.parametrize("server", list(SERVERS))
def test_bursts_then_idle_close_every_database(
    server: str,
    tmp_path: Path,
    make_tracker: Callable[[str], Path],
) -> None:
    port = free_port()
    home = make_tracker(f"http://127.0.0.1:{port}/")
    env = {"ROUNDUP_TRACKER_HOME": str(home), **ENV}
    with ServerProcess(
        SERVERS[server](port), port, tmp_path / "logs", env=env, name=server
    ) as process:
        assert process.proc is not None
        pid = process.proc.pid
        for _ in range(2):
            answers = burst(process.url, 16)
            assert answers == [200] * 16
            # Idle: every database is closed within 1.5 x reuse_db_idle of
            # its last request (docs/database-reuse.rst, "Bounds"), plus SLACK.
            assert wait_for(lambda: db_files(pid, home) == 0, 1.5 * IDLE + SLACK), (
                db_files(pid, home),
                process.log_tail(),
            )
        assert "ProgrammingError" not in process.log_tail(400)


# -- PostgreSQL: connections, not files --------------------------------------

#: The server threads of the PostgreSQL runs (each serves one request at a
#: time, so at most that many databases are in use at once), and the burst's
#: concurrent clients (more than the threads: every thread is used).
PG_THREADS = 6
PG_BURST = 12
#: Connections of one database: its own, the sessions', the one-time keys'.
PG_PER_DB = 3

PG_SERVERS: dict[str, Callable[[int], list[str]]] = {
    # granian's blocking threads grow with the load up to PG_THREADS and end
    # after 5 s idle (outside ``threading``: the threads that leaked).
    "granian": lambda port: [*granian(port), "--blocking-threads", str(PG_THREADS)],
    "waitress": lambda port: [
        *waitress_command(port)[:-2],
        f"--threads={PG_THREADS}",
        *waitress_command(port)[-1:],
    ],
}


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pg.PostgresServer]:
    with pg.running_postgres(tmp_path_factory.mktemp("pg-dbpool")) as server:
        yield server


def pg_tracker(postgres: pg.PostgresServer, home: Path, name: str, web: str) -> Path:
    """A PostgreSQL tracker (database ``name``) with issue1."""
    from roundup import instance

    pg.create_pg_tracker(
        postgres, home, name, admin_password=seeded.ADMIN_PASSWORD, web=web
    )
    db = instance.open(str(home)).open("admin")
    try:
        db.issue.create(title="Sample issue one")
        db.commit()
    finally:
        db.close()
    return home


def local_tcp_ports(pids: list[int]) -> set[int]:
    """The local ports of the TCP sockets the processes ``pids`` hold
    (``/proc/PID/fd`` socket inodes matched in ``/proc/PID/net/tcp``)."""
    ports = set()
    for pid in pids:
        inodes = set()
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
        for table in ("tcp", "tcp6"):
            try:
                with open(f"/proc/{pid}/net/{table}") as f:
                    rows = f.read().splitlines()[1:]
            except OSError:
                continue
            for row in rows:
                fields = row.split()
                if fields[9] in inodes:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def pg_connections(postgres: pg.PostgresServer, database: str, pid: int) -> int:
    """Connections to ``database`` in ``pg_stat_activity`` whose client is a
    socket of the server's processes (``pid`` and its children)."""
    import psycopg2

    conn = psycopg2.connect(
        host=postgres.host, port=postgres.port, user=pg.SUPERUSER, dbname="postgres"
    )
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                "SELECT client_port FROM pg_stat_activity WHERE datname = %s",
                (database,),
            )
            clients = [row[0] for row in cursor.fetchall()]
    finally:
        conn.close()
    ports = local_tcp_ports(tree(pid))
    return sum(port in ports for port in clients)


@pytest.mark.parametrize("server", list(PG_SERVERS))
def test_postgresql_bursts_then_idle_close_every_connection(
    server: str, tmp_path: Path, postgres: pg.PostgresServer
) -> None:
    """docs/database-reuse.rst, "Bounds": during a burst at most
    ``reuse_db_max`` databases kept plus those in use (one per server
    thread); between requests at most ``reuse_db_max``; after 1.5 x
    ``reuse_db_idle`` none (each database up to three connections)."""
    port = free_port()
    database = f"dbpool_{server}"
    home = pg_tracker(
        postgres, tmp_path / "tracker", database, f"http://127.0.0.1:{port}/"
    )
    env = {"ROUNDUP_TRACKER_HOME": str(home), **ENV}
    with ServerProcess(
        PG_SERVERS[server](port), port, tmp_path / "logs", env=env, name=server
    ) as process:
        assert process.proc is not None
        pid = process.proc.pid

        def count() -> int:
            return pg_connections(postgres, database, pid)

        for _ in range(2):
            during: list[int] = []
            done = threading.Event()

            def sample(
                during: list[int] = during, done: threading.Event = done
            ) -> None:
                while not done.is_set():
                    during.append(count())
                    time.sleep(0.02)

            sampler = threading.Thread(target=sample)
            sampler.start()
            try:
                answers = burst(process.url, PG_BURST)
            finally:
                done.set()
                sampler.join()
            after = count()
            assert answers == [200] * PG_BURST, process.log_tail()
            assert max(during) <= PG_PER_DB * (MAX_KEPT + PG_THREADS), during
            # Between requests: at most reuse_db_max kept (none in use now).
            assert after <= PG_PER_DB * MAX_KEPT, (after, during)
            assert wait_for(lambda: count() == 0, 1.5 * IDLE + SLACK), (
                count(),
                process.log_tail(),
            )
        assert "ProgrammingError" not in process.log_tail(400)


# -- a low descriptor limit ----------------------------------------------------

#: The server's ``RLIMIT_NOFILE`` (soft and hard): ``/-/ready`` wants
#: max(32, a tenth) = 32 free.  A burst of LOW_BURST requests in flight needs
#: up to 6 each (sqlite: database, sessions, one-time keys, their WAL files)
#: besides the server's own (about 40): it fits, but a database kept by every
#: thread that ever ran would not for long.
LOW_LIMIT = 256
LOW_BURST = 16


def low_limit() -> None:
    """The server subprocess's ``ulimit -n LOW_LIMIT`` (before exec)."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (LOW_LIMIT, LOW_LIMIT))


def test_low_descriptor_limit_granian(
    tmp_path: Path, make_tracker: Callable[[str], Path]
) -> None:
    """Under ``ulimit -n 256`` (granian): bursts, each served by new threads
    (the previous ones ended idle), answer 200 every time and ``/-/ready``
    passes; pushed near the limit, ``/-/ready`` answers 503 with
    the ``files`` check failing, and passes again once the descriptors are
    back.  The server's own baseline is far from the limit, so the test app
    (tests/apps/fd_app.py) holds descriptors on ``/-test-fds/hold`` until
    only 16 are left, and closes them on ``/-test-fds/release``."""
    port = free_port()
    home = make_tracker(f"http://127.0.0.1:{port}/")
    env = {"ROUNDUP_TRACKER_HOME": str(home), **ENV}
    with (
        ServerProcess(
            granian(port, "fd_app:application"),
            port,
            tmp_path / "logs",
            env=env,
            name="granian",
            preexec_fn=low_limit,
        ) as process,
        LocalSession() as session,
    ):
        ready = process.url + "-/ready"
        for cycle in range(3):
            if cycle:  # granian's blocking threads end: new ones serve next
                time.sleep(GRANIAN_THREAD_IDLE + 0.5)
            answers = burst(process.url, LOW_BURST)
            assert answers == [200] * LOW_BURST, process.log_tail()
            reply = session.get(ready)
            assert reply.status_code == 200, reply.text
        held = session.get(process.url + "-test-fds/hold?free=16")
        assert held.status_code == 200
        assert f"limit {LOW_LIMIT}" in held.text, held.text  # ulimit applied
        reply = session.get(ready)
        assert reply.status_code == 503, reply.text
        assert reply.json()["failing"] == ["files"], reply.text
        assert "near the file descriptor limit" in reply.json()["checks"]["files"]
        assert session.get(process.url + "-test-fds/release").status_code == 200
        assert session.get(ready).status_code == 200
        assert burst(process.url, LOW_BURST) == [200] * LOW_BURST
        log = process.log_tail(400)
        assert "Too many open files" not in log
        assert "ProgrammingError" not in log
