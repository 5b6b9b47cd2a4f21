"""Who may read ``/-/health``, ``/-/ready`` and ``/-/metrics``, and whose
``X-Forwarded-*`` count, under each real server the documentation covers.

Every server has its own proxy-header handling: waitress 3 removes
``X-Forwarded-*`` from peers it does not itself trust (so
``roundup-wsgi serve --trusted-proxy`` turns that off and
docs/deployment/waitress.rst says to pass
``--no-clear-untrusted-proxy-headers`` to ``waitress-serve``), gunicorn
sets ``wsgi.url_scheme`` from ``X-Forwarded-Proto`` sent by its
``forwarded_allow_ips`` (``deploy/gunicorn.conf.py`` makes them our trusted
proxies), granian and hypercorn pass the headers on untouched.  In each case
a client behind the trusted proxy (``X-Forwarded-For: 203.0.113.7`` sent by
127.0.0.1) must not get the answers, a request from the proxy naming no
client must not either (fail closed: the server may have dropped the
header), a loopback peer that is no proxy still gets them, a peer that is no
trusted proxy gains nothing by sending the headers, and the forwarded scheme
and host reach the redirect built from ``wsgi.url_scheme``/``HTTP_HOST`` and
Roundup's CSRF host check.  One server per module-scoped fixture and
configuration; requests leave from chosen loopback addresses.
"""

from __future__ import annotations

import http.client
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

import pytest
from helpers import seeded
from helpers.servers import (
    ServerProcess,
    free_port,
    granian_command,
    hypercorn_command,
    waitress_command,
)

pytestmark = pytest.mark.slow

pytest.importorskip("prometheus_client")

DEPLOY_DIR = Path(__file__).resolve().parents[3] / "deploy"
#: The trusted proxy's address (the proxy on the same machine).
PROXY = "127.0.0.1"
#: A loopback peer that is no trusted proxy.
PEER = "127.0.0.2"
#: A client on the Internet behind the proxy (RFC 5737 TEST-NET-3).
REMOTE = "203.0.113.7"
#: The public site the proxy serves.
PUBLIC_HOST = "bugs.example.org"
WEB = f"https://{PUBLIC_HOST}/bugs/"
ENDPOINTS = ("/-/health", "/-/ready", "/-/metrics")
#: What the proxy adds for a browser on the Internet.
FORWARDED = {
    "X-Forwarded-For": REMOTE,
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": PUBLIC_HOST,
}


@dataclass
class Served:
    """A server under test: its port and what it should do with the
    forwarded headers."""

    name: str
    port: int
    #: The forwarded headers reach the application (False: the server drops
    #: them, as waitress-serve does unless told not to).
    headers_arrive: bool


def request(
    source: str,
    port: int,
    path: str,
    headers: dict[str, str] | None = None,
    method: str = "GET",
    body: str | None = None,
) -> tuple[int, Message, bytes]:
    """Send one request to 127.0.0.1:``port`` from the loopback address
    ``source``: ``(status, headers, body)`` (header names in any case)."""
    connection = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=60, source_address=(source, 0)
    )
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def start(
    server: str,
    trusted: bool,
    tmp_path_factory: pytest.TempPathFactory,
    tracker_template: Path,
    headers_arrive: bool = True,
) -> Iterator[Served]:
    """Serve a copy of the seeded tracker as ``bugs`` with ``server``'s
    documented command, trusting :data:`PROXY` or no proxy; metrics on."""
    work = tmp_path_factory.mktemp(f"{'proxied' if trusted else 'direct'}-{server}")
    home = seeded.copy_tracker(tracker_template, work / "bugs", WEB)
    port = free_port()
    with ServerProcess(
        command(server, port, home, trusted=trusted),
        port,
        work / "logs",
        env={"ROUNDUP_WSGI_METRICS": "on", **environment(home, trusted=trusted)},
        name=server,
        ready_path="/bugs/@@file/style.css",
    ):
        yield Served(server, port, headers_arrive)


def command(server: str, port: int, home: Path, trusted: bool) -> list[str]:
    """The command line the documentation gives for ``server``."""
    if server == "serve":
        return [
            sys.executable,
            "-m",
            "roundup_wsgi",
            "serve",
            f"bugs={home}",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--metrics",
            "--access-log",
            "off",
            *(["--trusted-proxy", PROXY] if trusted else ["--health-network", PROXY]),
        ]
    if server == "waitress-serve":
        line = waitress_command(port)
        return [*line[:-1], "--no-clear-untrusted-proxy-headers", line[-1]]
    if server == "waitress-serve-default":
        return waitress_command(port)
    if server == "gunicorn":
        return [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            str(DEPLOY_DIR / "gunicorn.conf.py"),
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            "1",
        ]
    if server == "granian":
        return granian_command(port)
    assert server == "hypercorn"
    return hypercorn_command(port)


def environment(home: Path, trusted: bool) -> dict[str, str]:
    env = {"ROUNDUP_TRACKERS": f"bugs={home}", "ROUNDUP_WSGI_ACCESS_LOG": "off"}
    if trusted:
        env["ROUNDUP_WSGI_TRUSTED_PROXIES"] = PROXY
    else:
        # Only the proxy's address: PEER is outside.
        env["ROUNDUP_WSGI_HEALTH_NETWORKS"] = PROXY
    return env


@pytest.fixture(
    scope="module",
    params=[
        "serve",
        "waitress-serve",
        "waitress-serve-default",
        "gunicorn",
        "granian",
        "hypercorn",
    ],
)
def proxied(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    tracker_template: Path,
) -> Iterator[Served]:
    """A server with 127.0.0.1 as trusted proxy, the default health networks
    (loopback and the proxy) and metrics on."""
    server: str = request.param
    yield from start(
        server,
        True,
        tmp_path_factory,
        tracker_template,
        headers_arrive=server != "waitress-serve-default",
    )


@pytest.fixture(scope="module", params=["serve", "gunicorn", "granian"])
def direct(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    tracker_template: Path,
) -> Iterator[Served]:
    """A server trusting no proxy, answering ``/-/`` to 127.0.0.1 only."""
    server: str = request.param
    yield from start(server, False, tmp_path_factory, tracker_template)


def assert_refused(status: int, body: bytes) -> None:
    """Roundup's 404 for an unknown path: no health data, no metrics."""
    assert status == 404, body[:200]
    assert b"checks" not in body
    assert b"roundup_wsgi_requests_total" not in body


# -- a trusted proxy in front ---------------------------------------------------


def test_remote_client_behind_the_proxy_is_refused(proxied: Served) -> None:
    for path in ENDPOINTS:
        status, _, body = request(PROXY, proxied.port, path, FORWARDED)
        assert_refused(status, body)


def test_proxy_naming_no_client_is_refused(proxied: Served) -> None:
    """Fail closed: without X-Forwarded-For the client is unknown (the
    server may have dropped the header), even though the proxy is loopback."""
    for path in ENDPOINTS:
        status, _, body = request(PROXY, proxied.port, path)
        assert_refused(status, body)


def test_local_client_through_the_proxy(proxied: Served) -> None:
    """A monitoring client on loopback, through the proxy, is answered where
    the header arrives; where the server dropped it, refused (fail closed)."""
    local = {"X-Forwarded-For": "127.0.0.1"}
    for path in ("/-/ready", "/-/metrics"):
        status, _, body = request(PROXY, proxied.port, path, local)
        if proxied.headers_arrive:
            assert status == 200, body[:200]
        else:
            assert_refused(status, body)
    status, _, body = request(PROXY, proxied.port, "/-/ready", local)
    if proxied.headers_arrive:
        assert b'"bugs:database": "ok"' in body


def test_loopback_peer_that_is_no_proxy_is_answered(proxied: Served) -> None:
    """A loopback peer is answered; the X-Forwarded-For it sends is dropped,
    not believed (it stays the client)."""
    for headers in ({}, FORWARDED):
        for path in ("/-/ready", "/-/metrics"):
            status, _, body = request(PEER, proxied.port, path, headers)
            assert status == 200, body[:200]
    status, _, body = request(PEER, proxied.port, "/-/metrics")
    assert b"roundup_wsgi_requests_total" in body


def test_forwarded_scheme_and_host_reach_the_application(proxied: Served) -> None:
    """``/bugs`` redirects to the URL built from ``wsgi.url_scheme`` and
    ``HTTP_HOST``: the public https site through the proxy (the server's own
    address where the server dropped the headers)."""
    status, headers, _ = request(PROXY, proxied.port, "/bugs", FORWARDED)
    assert status == 301
    if proxied.headers_arrive:
        assert headers["Location"] == WEB
    else:
        assert headers["Location"] == f"http://127.0.0.1:{proxied.port}/bugs/"


def test_spoofed_scheme_and_host_are_ignored(proxied: Served) -> None:
    status, headers, _ = request(PEER, proxied.port, "/bugs", FORWARDED)
    assert status == 301
    assert headers["Location"] == f"http://127.0.0.1:{proxied.port}/bugs/"


def test_login_through_the_proxy_passes_roundups_host_check(proxied: Served) -> None:
    """A proxy that sends the backend's Host (nginx's default, Apache without
    ProxyPreserveHost): Roundup's CSRF check sees the public host from
    X-Forwarded-Host, so the login form works; from a peer that is no proxy
    the same headers do not count ("Invalid HOST")."""
    browser = {
        **FORWARDED,
        "Host": f"127.0.0.1:{proxied.port}",
        "Origin": f"https://{PUBLIC_HOST}",
        "Referer": WEB,
        "Content-Type": "application/x-www-form-urlencoded",
    }
    login = (
        f"__login_name={seeded.DEMO_USER}&__login_password="
        f"{seeded.DEMO_PASSWORD}&@action=login"
    )
    _, _, body = request(PROXY, proxied.port, "/bugs/", browser, "POST", login)
    if proxied.headers_arrive:
        assert b"Hello, demo" in body, body[:500]
    else:
        assert b"Invalid HOST" in body, body[:500]
    _, _, body = request(PEER, proxied.port, "/bugs/", browser, "POST", login)
    assert b"Invalid HOST" in body, body[:500]
    assert b"Hello, demo" not in body


# -- no trusted proxy -----------------------------------------------------------


def test_without_trusted_proxies_forwarded_for_gains_nothing(direct: Served) -> None:
    """PEER is outside the health networks; naming the allowed address in
    X-Forwarded-For does not let it in."""
    for path in ENDPOINTS:
        status, _, body = request(PEER, direct.port, path, {"X-Forwarded-For": PROXY})
        assert_refused(status, body)
    for path in ("/-/ready", "/-/metrics"):
        status, _, body = request(PROXY, direct.port, path)
        assert status == 200, body[:200]


def test_without_trusted_proxies_scheme_and_host_are_not_believed(
    direct: Served,
) -> None:
    """Nobody is trusted, loopback included (gunicorn's own default trusts
    loopback's X-Forwarded-Proto; deploy/gunicorn.conf.py does not)."""
    for source in (PROXY, PEER):
        status, headers, _ = request(source, direct.port, "/bugs", FORWARDED)
        assert status == 301
        assert headers["Location"] == f"http://127.0.0.1:{direct.port}/bugs/"
