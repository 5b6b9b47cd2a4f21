"""Basic credentials that cannot be decoded answer 400, not 500.

Roundup's ``Client.determine_user`` decodes ``Authorization: Basic ...``
with ``b2s(base64.b64decode(...))`` and catches only ``TypeError``: a
challenge that is not base64, or whose bytes are not UTF-8, raises
``ValueError`` out of its ``Client``.  Stock Roundup then answers its
500 page (and mails the admin) for a page, and lets the exception reach
the server for ``/rest``.  Ours answers 400 with no detail, and logs one
line.  Well-formed credentials, wrong or right, are answered as by stock.
"""

from __future__ import annotations

import base64
import http.client
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import seeded, servers
from roundup.cgi.wsgi_handler import RequestDispatcher as StockDispatcher
from webtest import TestApp

from roundup_wsgi import RequestDispatcher
from roundup_wsgi.erroranswers import BAD_CREDENTIALS, malformed_basic_credentials

#: ``Authorization`` values Roundup cannot decode, by what is wrong.
MALFORMED = {
    "not UTF-8": "Basic " + base64.b64encode(b"\xff\xfe:secret").decode(),
    "bad padding": "Basic abc",
    "not ASCII": "Basic \xff\xfe",
}
#: Paths that run Roundup's ``determine_user``: a page and the REST API.
PATHS = ("/issue", "/rest/data/issue")
#: Headers REST needs besides the credentials (Roundup's CSRF checks).
REST = {"X-Requested-With": "rest", "Referer": "http://localhost/"}


@pytest.mark.parametrize(
    ("value", "malformed"),
    [
        *((value, True) for value in MALFORMED.values()),
        (seeded.ADMIN_AUTH["Authorization"], False),
        ("Basic " + base64.b64encode(b"nocolon").decode(), False),
        ("Bearer abc", False),
        ("Basic", False),  # no credentials: Roundup ignores it
        ("", False),
    ],
)
def test_which_credentials_are_malformed(value: str, malformed: bool) -> None:
    assert malformed_basic_credentials({"HTTP_AUTHORIZATION": value}) is malformed


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("what", sorted(MALFORMED))
def test_malformed_credentials_answer_400_in_process(
    what: str, path: str, tracker_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ours = TestApp(RequestDispatcher(str(tracker_home)))
    headers = {**REST, "Authorization": MALFORMED[what]}
    with caplog.at_level(logging.INFO, logger="roundup_wsgi"):
        answer = ours.get(path, headers=headers, expect_errors=True)
    assert answer.status_int == 400
    assert BAD_CREDENTIALS.encode() in answer.body.replace(b"&#x27;", b"'")
    assert b"Traceback" not in answer.body
    lines = [r.getMessage() for r in caplog.records if "answered 400" in r.msg]
    assert lines == [f"GET {path}: malformed Basic credentials, answered 400"]
    # Stock Roundup: its 500 page, or the exception itself.
    stock = TestApp(StockDispatcher(str(tracker_home)))
    try:
        answer = stock.get(path, headers=headers, expect_errors=True)
    except ValueError:
        return
    assert answer.status_int == 500


def test_well_formed_credentials_answer_as_stock(tracker_home: Path) -> None:
    """Right, wrong and colon-less credentials: the same status as stock."""
    ours = TestApp(RequestDispatcher(str(tracker_home)))
    stock = TestApp(StockDispatcher(str(tracker_home)))
    for value in (
        seeded.ADMIN_AUTH["Authorization"],
        "Basic " + base64.b64encode(b"admin:wrong").decode(),
        "Basic " + base64.b64encode(b"nocolon").decode(),
    ):
        headers = {**REST, "Authorization": value}
        for path in PATHS:
            got = ours.get(path, headers=headers, expect_errors=True).status_int
            want = stock.get(path, headers=headers, expect_errors=True).status_int
            assert got == want, (path, value)


def raw_get(port: int, path: str, authorization: str) -> tuple[int, bytes]:
    """GET with ``authorization`` sent as its Latin-1 bytes (what a client
    sends for a byte over 0x7f; the server gives it as that character)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=servers.HTTP_TIMEOUT)
    try:
        conn.putrequest("GET", path)
        conn.putheader("Authorization", authorization)
        for name, value in REST.items():
            conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@pytest.mark.slow
@pytest.mark.parametrize("server", ["waitress", "gunicorn"])
def test_malformed_credentials_answer_400_under_real_servers(
    server: str, make_tracker: Callable[[str], Path], tmp_path: Path
) -> None:
    """The header as the server passes it on (``\\xff`` bytes included):
    400 from ours where stock answers 500; a right login still works."""
    port = servers.free_port()
    home = make_tracker(f"http://127.0.0.1:{port}/")
    answers: dict[str, dict[tuple[str, str], int]] = {}
    for app in (servers.STOCK_APP, servers.OUR_APP):
        command = servers.SERVERS[server](port, app)
        env = {"ROUNDUP_TRACKER_HOME": str(home)}
        with servers.ServerProcess(command, port, tmp_path / f"log-{app}", env=env):
            answers[app] = {
                (what, path): raw_get(port, path, value)[0]
                for what, value in MALFORMED.items()
                for path in PATHS
            }
            status, body = raw_get(
                port, "/rest/data/issue", seeded.ADMIN_AUTH["Authorization"]
            )
            assert status == 200, body[:300]
    assert set(answers[servers.OUR_APP].values()) == {400}
    assert set(answers[servers.STOCK_APP].values()) == {500}
