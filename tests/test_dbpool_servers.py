"""Database reuse under real servers whose threads grow, shrink and idle:
every answer is 200 and once idle for ``reuse_db_idle`` (x 1.5) no
database file is open (roundup_wsgi/dbpool.py, issue 24 item 1).  The
``reuse_db_max`` bound is tested in process (tests/test_dbpool.py): from
outside, sqlite's descriptors of closed connections, kept while another
connection locks the file, cannot be told from kept databases.

granian's blocking threads are started outside ``threading`` (their
``threading.current_thread()`` is a ``_DummyThread`` that never goes) and
end after an idle time: before the fix each kept one database open forever.
Then (some servers, some runs) a database stayed open after idle because
Roundup's template ``python:`` expressions kept the last request's database
in their globals (roundup_wsgi/pythonexpr.py), and while one sqlite
connection of the process is open sqlite keeps the descriptors of every
closed one on the same file.
"""

from __future__ import annotations

import concurrent.futures
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers.servers import (
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


def granian(port: int) -> list[str]:
    """granian with blocking threads that end after 5 s idle (its minimum)."""
    return [*granian_command(port), "--blocking-threads-idle-timeout", "5"]


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
            # its last request (README "Database reuse"), plus SLACK.
            assert wait_for(lambda: db_files(pid, home) == 0, 1.5 * IDLE + SLACK), (
                db_files(pid, home),
                process.log_tail(),
            )
        assert "ProgrammingError" not in process.log_tail(400)
