"""The kept node cache under real servers (roundup_wsgi/nodecache.py):
waitress (4 threads, each with its own kept database) and gunicorn (2 sync
workers, one process each).  After every write, by
another process or through the server (a REST ``PUT`` answered by one of
its threads or workers), every following page shows the new value, on
whichever thread or worker answers it.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import roundup.instance
from helpers import seeded
from helpers.servers import (
    OUR_APP,
    LocalSession,
    ServerProcess,
    free_port,
    gunicorn_command,
    waitress_command,
)

pytestmark = pytest.mark.slow

#: Concurrent page requests after each write (more than the threads and
#: workers, so that every one of them answers some).
READS = 16


def concurrent_pages(session: Any, url: str, count: int = READS) -> list[str]:
    """``count`` GETs of ``url`` through ``session``, half of them at once
    (so several worker threads of the server answer), each a 200; their
    bodies."""

    def page(_: int) -> str:
        response = session.get(url)
        assert response.status_code == 200, response.text[:200]
        return str(response.text)

    with ThreadPoolExecutor(max_workers=max(count // 2, 1)) as pool:
        return list(pool.map(page, range(count)))


def set_title_elsewhere(home: Path, title: str) -> None:
    db = roundup.instance.open(str(home)).open("admin")
    try:
        db.issue.set("1", title=title)
        db.commit()
    finally:
        db.close()


@pytest.mark.parametrize(
    "command",
    [waitress_command, gunicorn_command],
    ids=["waitress", "gunicorn"],
)
def test_every_thread_sees_every_write_at_once(
    command: Callable[[int, str], list[str]],
    make_tracker: Callable[[str], Path],
    tmp_path: Path,
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    home = make_tracker(base + "/")
    server = ServerProcess(
        command(port, OUR_APP),
        port,
        tmp_path / "logs",
        env={"ROUNDUP_TRACKER_HOME": str(home)},
        name="nodecache",
    )
    session = LocalSession()
    admin = ("admin", seeded.ADMIN_PASSWORD)

    def all_pages(path: str) -> list[str]:
        return concurrent_pages(session, base + path)

    with server:
        for body in all_pages("/issue1") + all_pages("/issue"):
            assert "Sample issue one" in body
        for round_ in range(3):
            title = f"Written by another process {round_}"
            set_title_elsewhere(home, title)
            for body in all_pages("/issue") + all_pages("/issue1"):
                assert title in body
            rest = session.get(base + "/rest/data/issue/1", auth=admin)
            etag = rest.headers["ETag"]
            title = f"Written through the server {round_}"
            answer = session.put(
                base + "/rest/data/issue/1/title",
                json={"data": title},
                auth=admin,
                headers={
                    "If-Match": etag,
                    "X-Requested-With": "rest",
                    "Origin": base,
                    "Referer": base + "/",
                },
            )
            assert answer.status_code == 200, answer.text[:300]
            for body in all_pages("/issue1") + all_pages("/issue"):
                assert title in body
        assert not server.stopped, server.log_tail()
