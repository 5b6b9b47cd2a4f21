"""The ceiling: the smallest WSGI application, served like the trackers.

``benchmarks.hello:application`` answers every request with a 13-byte
``text/plain`` body; its req/s under a server is what that server can do
with no application work at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

BODY = b"Hello, world\n"


def application(
    environ: dict[str, Any], start_response: Callable[..., Any]
) -> Iterable[bytes]:
    """Answer ``200 OK`` with :data:`BODY` (PEP 3333 application)."""
    start_response(
        "200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]
    )
    return [BODY]
