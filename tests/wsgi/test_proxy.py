"""Tests of roundup_wsgi.wsgi.proxy: X-Forwarded-* from trusted proxies only."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from webtest import TestApp

from roundup_wsgi.wsgi.mount import Mount
from roundup_wsgi.wsgi.proxy import CLIENT_UNKNOWN, TrustedProxyFix, parse_networks

FORWARDED = {
    "X-Forwarded-For": "203.0.113.7",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "bugs.example",
    "X-Forwarded-Prefix": "/tracker",
    "Forwarded": "for=203.0.113.7;proto=https",
}


def show_environ(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
    """Answer the environ keys a proxy can change, as JSON."""
    keys = ("REMOTE_ADDR", "wsgi.url_scheme", "HTTP_HOST", "SCRIPT_NAME")
    seen = {key: environ.get(key) for key in keys}
    seen["forwarding"] = sorted(
        k for k in environ if k.startswith(("HTTP_X_FORWARDED", "HTTP_FORWARDED"))
    )
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(seen).encode()]


def request(app: Any, remote_addr: str) -> dict[str, Any]:
    test = TestApp(app, extra_environ={"REMOTE_ADDR": remote_addr})
    reply = test.get("/", headers=FORWARDED, extra_environ={"HTTP_HOST": "app:8000"})
    return dict(reply.json)


@pytest.mark.parametrize(
    "remote_addr", ["127.0.0.1", "10.1.2.3", "::1", "::ffff:127.0.0.1"]
)
def test_trusted_proxy_sets_scheme_host_prefix_and_client(remote_addr: str) -> None:
    app = TrustedProxyFix(show_environ, "127.0.0.1 ::1, 10.0.0.0/8")
    seen = request(app, remote_addr)
    assert seen["REMOTE_ADDR"] == "203.0.113.7"
    assert seen["wsgi.url_scheme"] == "https"
    assert seen["HTTP_HOST"] == "bugs.example"
    assert seen["SCRIPT_NAME"] == "/tracker"


@pytest.mark.parametrize("remote_addr", ["192.0.2.10", "127.0.0.2", "::2", "", "x"])
def test_untrusted_clients_cannot_spoof(remote_addr: str) -> None:
    app = TrustedProxyFix(show_environ, ["127.0.0.1", "::1"])
    seen = request(app, remote_addr)
    assert seen["REMOTE_ADDR"] == remote_addr
    assert seen["wsgi.url_scheme"] == "http"
    assert seen["HTTP_HOST"] == "app:8000"
    assert seen["SCRIPT_NAME"] == ""
    assert seen["forwarding"] == []  # the application never sees the forged headers


def test_bad_proxy_addresses_are_named() -> None:
    with pytest.raises(ValueError, match=r"'proxy\.example' is not an IP address"):
        parse_networks("127.0.0.1, proxy.example")
    with pytest.raises(ValueError, match="no trusted proxy"):
        parse_networks(" ")


def test_redirect_behind_a_trusted_proxy() -> None:
    """The mount's redirect uses the forwarded scheme, host and prefix."""
    mount = Mount({"bugs": show_environ})
    app = TrustedProxyFix(mount, "127.0.0.1")
    reply = TestApp(app, extra_environ={"REMOTE_ADDR": "127.0.0.1"}).get(
        "/bugs", headers=FORWARDED
    )
    assert reply.status_int == 301
    assert reply.headers["Location"] == "https://bugs.example/tracker/bugs/"
    direct = TestApp(app, extra_environ={"REMOTE_ADDR": "192.0.2.1"}).get(
        "/bugs", headers=FORWARDED, extra_environ={"HTTP_HOST": "app:8000"}
    )
    assert direct.headers["Location"] == "http://app:8000/bugs/"


@pytest.mark.parametrize(
    ("remote_addr", "forwarded_for", "unknown"),
    [
        ("127.0.0.1", None, True),  # the proxy names no client
        ("127.0.0.1", " , ", True),  # an empty last entry names none either
        ("127.0.0.1", "203.0.113.7", False),
        ("127.0.0.2", None, False),  # no proxy: the peer is the client
    ],
)
def test_client_unknown_marks_a_proxy_naming_no_client(
    remote_addr: str, forwarded_for: str | None, unknown: bool
) -> None:
    seen: dict[str, Any] = {}

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        seen.update(environ)
        start_response("204 No Content", [])
        return []

    headers = {} if forwarded_for is None else {"X-Forwarded-For": forwarded_for}
    test = TestApp(TrustedProxyFix(app, "127.0.0.1"))
    test.get("/", headers=headers, extra_environ={"REMOTE_ADDR": remote_addr})
    assert seen.get(CLIENT_UNKNOWN, False) is unknown
