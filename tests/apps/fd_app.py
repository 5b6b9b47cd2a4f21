"""``roundup_wsgi.app:application`` with two test paths that move the
process near its file descriptor limit and back (tests/test_dbpool_servers.py).

``GET /-test-fds/hold?free=N`` opens ``/dev/null`` until only ``N``
descriptors are left below the ``RLIMIT_NOFILE`` soft limit (counted in
``/proc/self/fd``, as ``/-/ready``'s ``files`` check counts) and answers
with the numbers; ``GET /-test-fds/release`` closes them.  Every other path
goes to the application.
"""

from __future__ import annotations

import os
import resource
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qs

from roundup_wsgi.app import application as roundup_application

PREFIX = "/-test-fds/"
_held: list[int] = []
_lock = threading.Lock()


def _answer(start_response: Any, text: str) -> Iterable[bytes]:
    body = text.encode() + b"\n"
    start_response(
        "200 OK",
        [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))],
    )
    return [body]


def application(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """The WSGI application (PEP 3333)."""
    path = environ.get("PATH_INFO", "")
    if not path.startswith(PREFIX):
        return roundup_application(environ, start_response)
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    with _lock:
        if path == PREFIX + "hold":
            free = int(parse_qs(environ.get("QUERY_STRING", ""))["free"][0])
            while limit - len(os.listdir("/proc/self/fd")) > free:
                _held.append(os.open(os.devnull, os.O_RDONLY))
        elif path == PREFIX + "release":
            while _held:
                os.close(_held.pop())
        used = len(os.listdir("/proc/self/fd"))
    return _answer(start_response, f"held {len(_held)} used {used} limit {limit}")
