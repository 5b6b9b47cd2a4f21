"""A write()-using WSGI application for the real-server tests.

``write_app:raw`` writes its whole body through the write callable (as old
imperative frameworks and Roundup's own dispatcher do); under granian, whose
``start_response`` returns ``None``, it fails.  ``write_app:application`` is
the same application under :func:`roundup_wsgi.wsgi.adapters.iterable_only`, in
the mode named by the environment variable ``WRITE_APP_MODE`` (default
``"greenlet"``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from roundup_wsgi.wsgi.adapters import iterable_only

#: Lines written; each is one write() call.
LINES = 5000
#: What the application also returns as its iterable, after the writes.
TRAILER = b"end of body\n"


def body_line(number: int) -> bytes:
    """Line ``number`` of the body."""
    return b"line %05d of a body sent with write()\n" % number


def raw(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """Write :data:`LINES` lines, then return :data:`TRAILER` as the iterable."""
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    for number in range(LINES):
        write(body_line(number))
    return [TRAILER]


application = iterable_only(raw, mode=os.environ.get("WRITE_APP_MODE", "greenlet"))
