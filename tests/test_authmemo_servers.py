"""Remembered password checks (roundup_wsgi/authmemo.py) under gunicorn
with 2 sync workers, side by side with Roundup's own dispatcher under the
same server: the same answers for right, wrong, changed and retired
credentials, and a password change made through the web UI (the user's
edit form, answered by one worker) refuses the old password on the very
next REST request, on every worker, though both remembered it.

Which worker answered is read from gunicorn's access log (``%(p)s``: the
worker's pid).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
import roundup.instance
from helpers import seeded
from helpers.servers import (
    OUR_APP,
    STOCK_APP,
    LocalSession,
    ServerProcess,
    free_port,
    gunicorn_command,
)
from helpers.wsgi import normalise_body
from roundup.configuration import CoreConfig

pytestmark = pytest.mark.slow

NEW_PASSWORD = "a-new-secret"
DEMO = seeded.DEMO_AUTH
WRONG = seeded.basic_auth(seeded.DEMO_USER, "not-the-password")
NEW = seeded.basic_auth(seeded.DEMO_USER, NEW_PASSWORD)
PATH = "rest/data/issue"
#: Requests per batch, 4 at a time: more than the workers.
BATCH = 8
#: Batches tried until both workers answered some.
MAX_BATCHES = 6
#: Seconds gunicorn may take to write a request's access log line.
LOG_WAIT = 10.0
#: The edit form's CSRF token (an ``<input name="@csrf" ... value="...">``).
CSRF = re.compile(r'<input[^>]*\bname="@csrf"[^>]*\bvalue="([^"]+)"')


def logged_gunicorn(port: int, app: str) -> list[str]:
    """gunicorn, 2 sync workers, logging each request's worker pid."""
    return [
        *gunicorn_command(port, app),
        "--access-logfile",
        "-",
        "--access-logformat",
        "%(p)s %(m)s %(U)s %(s)s",
    ]


@dataclass
class Served:
    name: str
    process: ServerProcess
    home: Path

    @property
    def url(self) -> str:
        return self.process.url

    def get(self, headers: dict[str, str]) -> tuple[int, bytes]:
        with LocalSession() as session:
            response = session.get(self.url + PATH, headers=headers)
        body = normalise_body(response.content, self.url)
        return response.status_code, body

    def log_lines(self) -> list[str]:
        text = self.process.stdout_log.read_text(errors="replace")
        return [line for line in text.splitlines() if f"/{PATH} " in line]

    def batch(self, headers: dict[str, str]) -> tuple[set[int], set[str]]:
        """:data:`BATCH` requests, 4 at a time, each on a new connection:
        the statuses seen and the pids of the workers that answered."""
        before = len(self.log_lines())
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda _: self.get(headers), range(BATCH)))
        deadline = time.monotonic() + LOG_WAIT
        lines = self.log_lines()[before:]
        while len(lines) < BATCH and time.monotonic() < deadline:
            time.sleep(0.05)
            lines = self.log_lines()[before:]
        assert len(lines) >= BATCH, self.process.log_tail()
        return {status for status, _ in answers}, {line.split()[0] for line in lines}

    def every_worker(self, headers: dict[str, str]) -> set[int]:
        """Batches until both workers answered; the statuses seen."""
        statuses: set[int] = set()
        pids: set[str] = set()
        for _ in range(MAX_BATCHES):
            seen, answered = self.batch(headers)
            statuses |= seen
            pids |= answered
            if len(pids) >= 2:
                return statuses
        raise AssertionError(f"one worker answered every request: {pids}")

    def change_password_through_the_web(self) -> None:
        """The demo user's edit form (``user3``), as the demo user."""
        with LocalSession() as session:
            page = session.get(self.url + "user3", headers=DEMO)
            match = CSRF.search(page.text)
            assert page.status_code == 200
            assert match, "no @csrf token in the user's edit form"
            response = session.post(
                self.url + "user3",
                data={
                    "@action": "edit",
                    "@template": "item",
                    "@csrf": match.group(1),
                    "password": NEW_PASSWORD,
                    "@confirm@password": NEW_PASSWORD,
                },
                headers={
                    **DEMO,
                    "Origin": self.url.rstrip("/"),
                    "Referer": self.url + "user3",
                },
                allow_redirects=False,
            )
        assert response.status_code == 302, response.text[:500]
        assert "password%20edited%20ok" in response.headers["Location"]


def prepare(home: Path) -> Path:
    """Failed API logins allowed often enough for the batches below (Roundup
    allows 4 per 10 minutes by default; the limit stays on)."""
    config = CoreConfig(str(home))
    config["WEB_API_FAILED_LOGIN_LIMIT"] = 1000
    config.save(str(home / "config.ini"))
    return home


def retire_demo(home: Path) -> None:
    db = roundup.instance.open(str(home)).open("admin")
    try:
        db.user.retire(db.user.lookup(seeded.DEMO_USER))
        db.commit()
    finally:
        db.close()


@pytest.fixture
def served(
    make_tracker: Callable[[str], Path], tmp_path: Path
) -> Iterator[tuple[Served, Served]]:
    """Ours and Roundup's under gunicorn, each on its own tracker copy."""
    with ExitStack() as stack:
        result = []
        for name, app in (("ours", OUR_APP), ("stock", STOCK_APP)):
            port = free_port()
            home = prepare(make_tracker(f"http://127.0.0.1:{port}/"))
            process = ServerProcess(
                logged_gunicorn(port, app),
                port,
                tmp_path / "logs",
                env={"ROUNDUP_TRACKER_HOME": str(home)},
                name=name,
            )
            stack.enter_context(process)
            result.append(Served(name, process, home))
        yield result[0], result[1]


def test_same_answers_as_roundup_and_a_web_password_change_on_every_worker(
    served: tuple[Served, Served],
) -> None:
    ours, stock = served

    def same(headers: dict[str, str]) -> int:
        answer = ours.get(headers)
        assert answer == stock.get(headers)
        return answer[0]

    # Both workers verify the password once, then remember it.
    assert ours.every_worker(DEMO) == {200}
    assert same(DEMO) == 200
    assert same(WRONG) == 401
    assert ours.every_worker(WRONG) == {401}

    for server in (ours, stock):
        server.change_password_through_the_web()
    assert same(DEMO) == 401
    assert ours.every_worker(DEMO) == {401}
    assert same(NEW) == 200
    assert ours.every_worker(NEW) == {200}

    for server in (ours, stock):
        retire_demo(server.home)
    assert same(NEW) == 401
    assert ours.every_worker(NEW) == {401}
