"""Roundup's own protections stay effective through our dispatcher, on a
real server (waitress, requests sent as raw bytes where a client library
would normalise them) and in-process:

* CSRF and Origin: a cross-origin form post (with or without a valid
  ``@csrf`` token), a forged token and a cross-origin REST call are refused
  and change nothing.  (A same-origin post *without* a token is accepted:
  that is Roundup's default ``[web] csrf_enforce_token = yes``; set it to
  ``required`` to refuse those too.)
* ``@@file`` / ``_file`` serve only the tracker's static directories: no
  path (``..``, ``%2e%2e``, encoded slashes, absolute paths, NUL) reads
  ``config.ini``, the database or ``/etc/passwd``.

(Forwarded headers from untrusted clients are the proxy module's concern
and are tested with it.)
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from wsgiref.validate import validator

import pytest
from helpers import loadclient, seeded
from helpers.servers import OUR_APP, ServerProcess, free_port, waitress_command
from webtest import TestApp

from roundup_wsgi import RequestDispatcher

#: Paths trying to leave the static directories, as sent on the wire.
TRAVERSALS = [
    "/@@file/../config.ini",
    "/@@file/..%2fconfig.ini",
    "/@@file/%2e%2e/config.ini",
    "/@@file/%2e%2e%2fconfig.ini",
    "/@@file/%252e%252e/config.ini",
    "/@@file/....//config.ini",
    "/@@file/../../../../../../etc/passwd",
    "/@@file//etc/passwd",
    "/@@file/%2fetc%2fpasswd",
    "/@@file/..%5cconfig.ini",
    "/@@file/style.css%00../../config.ini",
    "/_file/../config.ini",
    "/_file/../db/db",
    "/@@file/../db/db",
    "/@@file/../schema.py",
    "/@@file/html/../../config.ini",
]
#: Bytes that only the secret files contain.
SECRETS = (b"[tracker]", b"root:x:0:0", b"SQLite format 3", b"def open(")


def raw_get(port: int, target: str) -> tuple[str, bytes]:
    """GET ``target`` exactly as given; return (status line, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(
            f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Connection: close\r\n\r\n".encode("latin-1")
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n", 1)[0].decode("latin-1"), body


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, tracker_template: Path
) -> Iterator[tuple[ServerProcess, Path]]:
    port = free_port()
    base = tmp_path_factory.mktemp("security")
    home = seeded.copy_tracker(
        tracker_template, base / "tracker", f"http://127.0.0.1:{port}/"
    )
    process = ServerProcess(
        waitress_command(port, OUR_APP),
        port,
        base / "logs",
        env={"ROUNDUP_TRACKER_HOME": str(home)},
        name="waitress",
    )
    with process:
        yield process, home


@pytest.mark.slow
@pytest.mark.parametrize("target", TRAVERSALS)
def test_static_files_cannot_leave_the_static_dirs(
    server: tuple[ServerProcess, Path], target: str
) -> None:
    process, _ = server
    status, body = raw_get(process.port, target)
    assert not status.startswith("HTTP/1.1 2") or not any(
        secret in body for secret in SECRETS
    ), (target, status, body[:200])
    for secret in SECRETS:
        assert secret not in body, (target, status)


@pytest.mark.parametrize("target", TRAVERSALS)
def test_static_files_in_process(tracker_home: Path, target: str) -> None:
    """The same paths as a server would decode them into PATH_INFO."""
    from urllib.parse import unquote

    app = TestApp(validator(RequestDispatcher(str(tracker_home))))
    path, _, query = unquote(target).partition("?")
    response = app.get(
        path.replace("\x00", ""), extra_environ={"QUERY_STRING": query}, status="*"
    )
    for secret in SECRETS:
        assert secret not in response.body, (target, response.status)


@pytest.mark.slow
def test_static_file_is_served(server: tuple[ServerProcess, Path]) -> None:
    """The control: a real static file is served with its bytes."""
    process, home = server
    status, body = raw_get(process.port, "/@@file/style.css")
    assert status.startswith("HTTP/1.1 200"), status
    assert body == (home / "html" / "style.css").read_bytes()


def issue_count(home: Path) -> int:
    from roundup import instance

    db = instance.open(str(home)).open("admin")
    try:
        return len(db.issue.list())
    finally:
        db.close()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("origin", "token"),
    [
        ("http://evil.example", "page"),  # cross-origin, valid token
        (None, "forged"),  # same origin, forged token
        ("http://evil.example", None),  # cross-origin, no token
        ("null", "page"),  # sandboxed iframe / file:// origin
    ],
    ids=["cross-origin", "forged-token", "cross-origin-no-token", "null-origin"],
)
def test_forged_form_posts_are_refused(
    server: tuple[ServerProcess, Path], origin: str | None, token: str | None
) -> None:
    process, home = server
    client = loadclient.LoadClient(
        process.url,
        seeded.DEMO_USER,
        seeded.DEMO_PASSWORD,
        "3",
        "form",
        "security",
        loadclient.LoadResult(),
    )
    client.login()
    before = issue_count(home)
    page = client.session.get(client.web + "issue?@template=item")
    fields = {"@action": "new", "title": "forged post", "priority": "3"}
    if token == "page":
        fields["@csrf"] = loadclient.csrf_token(page.text)
    elif token == "forged":
        fields["@csrf"] = "forged-token"
    sender = origin or client.origin
    reply = client.session.post(
        client.web + "issue",
        data=fields,
        headers={"Origin": sender, "Referer": sender + "/issue"},
        allow_redirects=False,
    )
    assert reply.status_code != 302, reply.headers.get("Location")
    assert reply.status_code < 500
    assert issue_count(home) == before
    # The same session can still post legitimately.
    good = client.session.get(client.web + "issue?@template=item")
    ok = client.session.post(
        client.web + "issue",
        data={
            "@action": "new",
            "title": "legitimate post",
            "priority": "3",
            "@csrf": loadclient.csrf_token(good.text),
        },
        headers={"Origin": client.origin, "Referer": client.web + "issue"},
        allow_redirects=False,
    )
    assert ok.status_code == 302
    assert issue_count(home) == before + 1


@pytest.mark.slow
@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example", "X-Requested-With": "rest"},
        {"Origin": "http://127.0.0.1:1", "X-Requested-With": "rest"},
        {"X-Requested-With": "rest"},  # no Origin on a POST
    ],
    ids=["foreign-origin", "other-port", "no-origin"],
)
def test_cross_origin_rest_post_is_refused(
    server: tuple[ServerProcess, Path], headers: dict[str, str]
) -> None:
    process, home = server
    before = issue_count(home)
    session = loadclient.Session()
    reply = session.post(
        process.url + "rest/data/issue",
        json={"title": "cross-origin rest"},
        headers=headers,
        auth=("admin", seeded.ADMIN_PASSWORD),
    )
    assert 400 <= reply.status_code < 500, reply.text
    assert issue_count(home) == before
