"""Concurrent clients that create issues on a real server, and the check that
nothing they were told was saved is missing (imported as ``loadclient``).

Each issue gets a unique title; its message text and attachment bytes are
derived from the title (:func:`expected_message`, :func:`expected_file`), so
*any* issue found in the database afterwards can be checked for
completeness, acknowledged or not.  Two ways of creating one:

* the web form (:func:`create_via_form`): ``GET issue?@template=item`` for
  a fresh ``@csrf`` token, then a multipart ``POST`` with ``title``,
  ``@note`` and ``@file``, as a browser sends it (``Origin``/``Referer`` of
  the tracker); acknowledged by ``302`` to ``.../issueN``;
* REST (:func:`create_via_rest`): ``POST /rest/data/file`` (multipart),
  ``/rest/data/msg`` and ``/rest/data/issue`` (JSON); acknowledged by the
  ``201`` of the issue.

A ``503`` with ``Retry-After`` is retried after a short pause (it is the
dispatcher's answer to a locked or unavailable database); every other
5xx is counted as unexpected.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from . import seeded
from .servers import TESTS_DIR, LocalSession

__all__ = [
    "CLIENTS",
    "Attempt",
    "LoadClient",
    "LoadResult",
    "Session",
    "artifacts_dir",
    "expected_file",
    "expected_message",
    "load_seconds",
    "make_clients",
    "run_load",
    "verification_figures",
    "verify_issues",
    "write_figures",
]

#: Concurrent clients of a load run (the issue's 16).
CLIENTS = 16

#: Seconds any single HTTP request may take (generous: 2 shared cores).
TIMEOUT = 60.0
#: Longest pause before retrying a 503 (seconds).
MAX_RETRY_PAUSE = 1.0
#: Attempts per issue when the server answers 503.
MAX_RETRIES = 20

CSRF = re.compile(r'name="@csrf"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="@csrf"')
ISSUE_LOCATION = re.compile(r"/issue(\d+)(?:\?|$)")


def expected_message(title: str) -> str:
    """The message text created with the issue ``title``."""
    return f"Message of {title}.\nSecond line: ü & <b>not markup</b>."


def expected_file(title: str) -> bytes:
    """The attachment created with the issue ``title`` (1-4 KiB of binary
    bytes, including NUL, CR and LF)."""
    seed = hashlib.sha256(title.encode()).digest()
    size = 1024 + seed[0] * 12
    return (seed + bytes(range(256))) * (size // 288) + b"\x00\r\n"


#: A requests session that stays on 127.0.0.1 (see servers.LocalSession).
Session = LocalSession


@dataclass
class Attempt:
    """One issue a client tried to create."""

    title: str
    via: str  # "form" or "rest"
    issue_id: str | None = None  # set when the server acknowledged it
    error: str | None = None  # why it was not acknowledged


@dataclass
class LoadResult:
    """Everything the clients saw."""

    attempts: list[Attempt] = field(default_factory=list)
    requests_sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    retried_503: int = 0
    unexpected_5xx: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def acknowledged(self) -> list[Attempt]:
        """Attempts the server confirmed with the new issue's id."""
        return [a for a in self.attempts if a.issue_id is not None]

    @property
    def unacknowledged(self) -> list[Attempt]:
        """Attempts without a confirmation (with the reason)."""
        return [a for a in self.attempts if a.issue_id is None]

    def summary(self) -> dict[str, Any]:
        """Figures for the report."""
        return {
            "requests_sent": self.requests_sent,
            "issues_attempted": len(self.attempts),
            "issues_acknowledged": len(self.acknowledged),
            "unacknowledged": [(a.title, a.error) for a in self.unacknowledged],
            "statuses": dict(sorted(self.statuses.items())),
            "retried_503": self.retried_503,
            "unexpected_5xx": len(self.unexpected_5xx),
            "client_errors": len(self.errors),
        }


class Retry(Exception):  # noqa: N818 - control flow, not an error
    """The server answered 503 + Retry-After."""


class LoadClient:
    """One simulated user: logs in once (a session cookie), then creates
    issues through ``via`` ("form" or "rest") until told to stop."""

    def __init__(
        self,
        web: str,
        username: str,
        password: str,
        user_id: str,
        via: str,
        name: str,
        result: LoadResult,
    ) -> None:
        self.web = web
        self.origin = web.rstrip("/")
        self.username = username
        self.password = password
        self.user_id = user_id
        self.via = via
        self.name = name
        self.result = result
        self.session = Session()
        self.count = 0

    # -- HTTP with bookkeeping ---------------------------------------------

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Send one request; count it; raise :class:`Retry` on 503 with
        Retry-After; record any other 5xx as unexpected."""
        kwargs.setdefault("allow_redirects", False)
        response = self.session.request(method, self.web + path.lstrip("/"), **kwargs)
        with self.result.lock:
            self.result.requests_sent += 1
            self.result.statuses[response.status_code] += 1
        if response.status_code == 503 and response.headers.get("Retry-After"):
            with self.result.lock:
                self.result.retried_503 += 1
            pause = min(float(response.headers["Retry-After"]), MAX_RETRY_PAUSE)
            time.sleep(pause)
            raise Retry()
        if response.status_code >= 500:
            with self.result.lock:
                self.result.unexpected_5xx.append(
                    f"{method} {path}: {response.status_code} {response.text[:300]!r}"
                )
        return response

    def login(self) -> None:
        """Log in through the front page's login form.

        :raises AssertionError: the login was refused.
        """
        for _ in range(MAX_RETRIES):
            try:
                front = self.call("GET", "")
                token = csrf_token(front.text)
                reply = self.call(
                    "POST",
                    "",
                    data={
                        "__login_name": self.username,
                        "__login_password": self.password,
                        "@action": "login",
                        "@csrf": token,
                    },
                    headers={"Origin": self.origin, "Referer": self.web},
                )
            except Retry:
                continue
            assert reply.status_code in (200, 302), reply.text[:500]
            assert self.session.cookies, "no session cookie after login"
            return
        raise AssertionError(f"{self.name}: could not log in")

    # -- creating issues ---------------------------------------------------

    def next_title(self) -> str:
        self.count += 1
        return f"load {self.name} #{self.count} {self.via}"

    def create_one(self) -> Attempt:
        """Create one issue (retrying 503s), record and return the attempt."""
        attempt = Attempt(self.next_title(), self.via)
        with self.result.lock:
            self.result.attempts.append(attempt)
        create = create_via_form if self.via == "form" else create_via_rest
        for _ in range(MAX_RETRIES):
            try:
                attempt.issue_id, attempt.error = create(self, attempt.title)
                return attempt
            except Retry:
                attempt.error = "503 (retried)"
                continue
            except requests.RequestException as error:
                attempt.error = f"{type(error).__name__}: {error}"
                with self.result.lock:
                    self.result.errors.append(f"{attempt.title}: {attempt.error}")
                return attempt
        return attempt

    def run(self, stop: threading.Event) -> None:
        """Create issues until ``stop`` is set (or the server is gone)."""
        try:
            self.login()
        except (requests.RequestException, AssertionError) as error:
            with self.result.lock:
                self.result.errors.append(f"{self.name} login: {error}")
            return
        while not stop.is_set():
            attempt = self.create_one()
            if attempt.error and attempt.error.startswith("ConnectionError"):
                return  # the server is gone (e.g. after SIGTERM)


def csrf_token(html: str) -> str:
    """The ``@csrf`` token of the first form in ``html``.

    :raises AssertionError: the page has none.
    """
    match = CSRF.search(html)
    assert match, f"no @csrf token in the page: {html[:500]!r}"
    return match.group(1) or match.group(2)


def create_via_form(client: LoadClient, title: str) -> tuple[str | None, str | None]:
    """Create an issue through the classic web form; return ``(id, error)``."""
    page = client.call("GET", "issue?@template=item")
    if page.status_code != 200:
        return None, f"new-issue page answered {page.status_code}"
    reply = client.call(
        "POST",
        "issue",
        data={
            "@action": "new",
            "@csrf": csrf_token(page.text),
            "title": title,
            "priority": "3",
            "@note": expected_message(title),
        },
        files={
            "@file": (
                "attachment.bin",
                expected_file(title),
                "application/octet-stream",
            )
        },
        headers={"Origin": client.origin, "Referer": client.web + "issue"},
    )
    match = ISSUE_LOCATION.search(reply.headers.get("Location", ""))
    if reply.status_code == 302 and match:
        return match.group(1), None
    return None, f"form post answered {reply.status_code}: {reply.text[:200]!r}"


def create_via_rest(client: LoadClient, title: str) -> tuple[str | None, str | None]:
    """Create file, message and issue through REST; return ``(id, error)``."""
    headers = {
        "X-Requested-With": "rest",
        "Origin": client.origin,
        "Referer": client.web,
    }

    def create(kind: str, **body: Any) -> tuple[Any, str | None]:
        """POST ``rest/data/<kind>``: ``(the new id, None)`` on 201, else
        ``(None, error)``."""
        reply = client.call("POST", f"rest/data/{kind}", headers=headers, **body)
        if reply.status_code != 201:
            return None, f"{kind}: {reply.status_code} {reply.text[:200]!r}"
        return reply.json()["data"]["id"], None

    file_id, error = create(
        "file",
        data={"name": "attachment.bin", "type": "application/octet-stream"},
        files={"content": ("attachment.bin", expected_file(title))},
    )
    if error:
        return None, error
    msg_id, error = create(
        "msg",
        json={
            "content": expected_message(title),
            "author": client.user_id,
            "files": [file_id],
        },
    )
    if error:
        return None, error
    issue_id, error = create(
        "issue",
        json={
            "title": title,
            "priority": "3",
            "messages": [msg_id],
            "files": [file_id],
        },
    )
    if error:
        return None, error
    return str(issue_id), None


def run_load(
    clients: list[LoadClient], seconds: float, result: LoadResult
) -> threading.Event:
    """Run ``clients`` in threads for ``seconds``; return the stop event
    (already set) once every thread has finished."""
    stop = threading.Event()
    threads = [
        threading.Thread(target=c.run, args=(stop,), name=c.name, daemon=True)
        for c in clients
    ]
    for thread in threads:
        thread.start()
    stop.wait(seconds)
    stop.set()
    for thread in threads:
        thread.join(TIMEOUT * 3)
        assert not thread.is_alive(), f"client {thread.name} hangs"
    return stop


@dataclass
class Verification:
    """What the database holds for the load's issues."""

    verified: int = 0
    problems: list[str] = field(default_factory=list)
    #: Issues found whose creation the client did not see acknowledged.
    unacknowledged_but_stored: list[str] = field(default_factory=list)


def verify_issues(home: str, result: LoadResult, prefix: str = "load ") -> Verification:
    """Check the tracker's database with Roundup's own API.

    Every acknowledged issue must exist under its id with the exact title,
    exactly one message with the exact text and one file with the exact
    bytes; every load issue in the database (acknowledged or not) must be
    complete in the same way (no partial writes) and appear once.
    """
    from roundup import instance

    check = Verification()
    acknowledged = {a.title: a for a in result.acknowledged}
    db = instance.open(home).open("admin")
    try:
        stored: dict[str, list[str]] = {}
        for issue_id in db.issue.list():
            title = db.issue.get(issue_id, "title")
            if title.startswith(prefix):
                stored.setdefault(title, []).append(issue_id)
        for title, ids in stored.items():
            if len(ids) != 1:
                check.problems.append(f"{title!r} stored {len(ids)} times: {ids}")
            issue_id = ids[0]
            messages = db.issue.get(issue_id, "messages")
            files = db.issue.get(issue_id, "files")
            if len(messages) != 1 or len(files) != 1:
                check.problems.append(
                    f"issue{issue_id} {title!r}: {len(messages)} messages, "
                    f"{len(files)} files (expected 1 and 1)"
                )
                continue
            if db.msg.get(messages[0], "content") != expected_message(title):
                check.problems.append(f"issue{issue_id}: message text differs")
            if db.file.get(files[0], "binary_content") != expected_file(title):
                check.problems.append(f"issue{issue_id}: attachment bytes differ")
            attempt = acknowledged.get(title)
            if attempt is None:
                check.unacknowledged_but_stored.append(f"issue{issue_id} {title!r}")
            elif attempt.issue_id != issue_id:
                check.problems.append(
                    f"{title!r} acknowledged as issue{attempt.issue_id}, "
                    f"stored as issue{issue_id}"
                )
        for title, attempt in acknowledged.items():
            if title not in stored:
                check.problems.append(
                    f"acknowledged issue{attempt.issue_id} {title!r} is missing"
                )
            else:
                check.verified += 1
    finally:
        db.close()
    return check


def load_seconds(variable: str, default: float) -> float:
    """Seconds of load: the environment variable ``variable`` if set, else
    ``default``."""
    return float(os.environ.get(variable, str(default)))


def make_clients(
    factory: Callable[..., LoadClient],
    web: str,
    user_id: str,
    result: LoadResult,
    count: int = CLIENTS,
) -> list[LoadClient]:
    """``count`` clients of the demo user (``seeded.DEMO_USER``), even ones
    through the web form, odd ones through REST, named ``c00``, ``c01``, ...

    :param factory: ``LoadClient`` or a subclass (or a partial of one),
        called as ``factory(web, user, password, user_id, mode, name, result)``.
    """
    return [
        factory(
            web,
            seeded.DEMO_USER,
            seeded.DEMO_PASSWORD,
            user_id,
            "form" if n % 2 == 0 else "rest",
            f"c{n:02d}",
            result,
        )
        for n in range(count)
    ]


def verification_figures(check: Verification) -> dict[str, Any]:
    """The figures of a :class:`Verification`, for the JSON of a run."""
    return {
        "issues_verified": check.verified,
        "stored_but_unacknowledged": check.unacknowledged_but_stored,
        "problems": check.problems,
    }


def artifacts_dir(name: str) -> Path:
    """``test-artifacts/<name>`` at the top of the checkout."""
    return TESTS_DIR.parent / "test-artifacts" / name


def write_figures(path: Path, figures: dict[str, Any]) -> None:
    """Write ``figures`` as JSON to ``path`` (creating its folder) and print
    them (shown with ``pytest -s``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))
