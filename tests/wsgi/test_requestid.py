"""Tests of roundup_wsgi.wsgi.requestid: a trusted proxy's request id, or a
new one, in the environ, the access log's note and the response."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from webtest import TestApp

from roundup_wsgi.wsgi.finish import Finished, FinishHooks
from roundup_wsgi.wsgi.proxy import TrustedProxyFix
from roundup_wsgi.wsgi.requestid import (
    REQUEST_ID,
    SAFE_ID,
    RequestIds,
    trace_id_of_traceparent,
    valid_request_id,
)

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE}-{PARENT}-01"


def show_id(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
    """Answer the request id the layers below see."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [environ[REQUEST_ID].encode()]


def stack(**kwargs: Any) -> tuple[TestApp, list[Finished]]:
    """FinishHooks > TrustedProxyFix(127.0.0.1) > RequestIds > show_id, new
    ids ``new1``, ``new2``...; and the finished records."""
    count = itertools.count(1)
    seen: list[Finished] = []
    app = RequestIds(show_id, lambda: f"new{next(count)}", **kwargs)
    app = FinishHooks(TrustedProxyFix(app, "127.0.0.1"), [seen.append])
    return TestApp(app), seen


@pytest.mark.parametrize(
    ("peer", "headers", "expected"),
    [
        ("127.0.0.1", {"X-Request-ID": "abc-123"}, "abc-123"),
        ("127.0.0.1", {"X-Request-ID": "7F000001:8296_7F000001:1F90"}, None),
        ("127.0.0.1", {"traceparent": TRACEPARENT}, TRACE),
        # X-Request-ID first, then traceparent
        ("127.0.0.1", {"X-Request-ID": "r1", "traceparent": TRACEPARENT}, "r1"),
        ("127.0.0.1", {"X-Request-ID": "bad id", "traceparent": TRACEPARENT}, TRACE),
        # untrusted peers: never their ids
        ("203.0.113.9", {"X-Request-ID": "forged"}, "new1"),
        ("203.0.113.9", {"traceparent": TRACEPARENT}, "new1"),
        # bad ids are replaced
        ("127.0.0.1", {"X-Request-ID": "a" * 129}, "new1"),
        ("127.0.0.1", {"X-Request-ID": "a b"}, "new1"),
        ("127.0.0.1", {"X-Request-ID": "a%0a"}, "new1"),
        ("127.0.0.1", {"X-Request-ID": "é"}, "new1"),
        ("127.0.0.1", {}, "new1"),
    ],
)
def test_the_request_id_is_a_trusted_proxys_or_new(
    peer: str, headers: dict[str, str], expected: str | None
) -> None:
    web, seen = stack()
    expected = expected or headers["X-Request-ID"]
    response = web.get("/", headers=headers, extra_environ={"REMOTE_ADDR": peer})
    assert response.text == expected
    assert response.headers["X-Request-ID"] == expected
    assert seen[0].notes["trace_id"] == expected


def test_without_a_trusted_proxy_layer_no_client_id_is_used() -> None:
    app = RequestIds(show_id, lambda: "fresh")
    response = TestApp(app).get(
        "/", headers={"X-Request-ID": "forged"}, extra_environ={"REMOTE_ADDR": "::1"}
    )
    assert response.text == "fresh"


def test_the_header_name_is_configurable_and_can_be_off() -> None:
    web, _ = stack(header="X-Correlation-ID")
    response = web.get(
        "/", headers={"X-Correlation-ID": "c1", "X-Request-ID": "r1"},
        extra_environ={"REMOTE_ADDR": "127.0.0.1"},
    )  # fmt: skip
    assert response.text == "c1"
    assert response.headers["X-Correlation-ID"] == "c1"
    assert "X-Request-ID" not in response.headers
    web, seen = stack(respond=False)
    response = web.get("/", headers={"X-Request-ID": "r1"},
                       extra_environ={"REMOTE_ADDR": "127.0.0.1"})  # fmt: skip
    assert "X-Request-ID" not in response.headers
    assert seen[0].notes["trace_id"] == "r1"


def test_a_bad_header_name_is_refused() -> None:
    with pytest.raises(ValueError, match="not a header name"):
        RequestIds(show_id, str, header="X Request")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (TRACEPARENT, TRACE),
        (f" {TRACEPARENT}\t", TRACE),
        (f"01-{TRACE}-{PARENT}-01-later-fields", TRACE),  # a later version
        (f"01-{TRACE}-{PARENT}-01", TRACE),
        (f"00-{TRACE}-{PARENT}-01-more", None),  # version 00 has four fields
        (f"00-{TRACE}-{PARENT}-01x", None),
        (f"ff-{TRACE}-{PARENT}-01", None),  # invalid version
        (f"00-{'0' * 32}-{PARENT}-01", None),  # all-zero trace-id
        (f"00-{TRACE}-{'0' * 16}-01", None),  # all-zero parent-id
        (f"00-{TRACE.upper()}-{PARENT}-01", None),  # upper case
        (f"00-{TRACE[:-1]}-{PARENT}-01", None),
        (f"00-{TRACE}-{PARENT}", None),
        ("", None),
        (f"00-{TRACE}\n-{PARENT}-01", None),
    ],
)
def test_traceparent_by_w3c_trace_context(value: str, expected: str | None) -> None:
    assert trace_id_of_traceparent(value) == expected


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_only_safe_ids_pass(value: str) -> None:
    found = valid_request_id(value)
    assert found is None or (found == value and SAFE_ID.fullmatch(found))
    if found is not None:
        assert len(found) <= 128
        assert found.isascii()
        assert found.isprintable()
        assert " " not in found
        assert '"' not in found
