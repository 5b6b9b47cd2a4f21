"""Tests of roundup_wsgi.wsgi.greenletmode: wsgi1_to_wsgi2's "greenlet"
mode hands each write() to the server as it is made.  (What every mode
does is tested in test_adapters.py and test_wsgi1call.py.)"""

from __future__ import annotations

from typing import Any

from helpers.adapters import TEXT, environ

from roundup_wsgi.wsgi.adapters import wsgi1_to_wsgi2


def test_greenlet_mode_hands_over_each_write_at_once() -> None:
    written: list[int] = []

    def app(environ: Any, start_response: Any) -> Any:
        write = start_response("200 OK", list(TEXT))
        for number in range(100):
            written.append(number)
            write(b"%d," % number)
        return [b"end"]

    _, _, body = wsgi1_to_wsgi2(app, "greenlet")(environ())
    chunks = iter(body)
    # The response starts at the first write; each chunk is one write, and
    # the application has not written ahead of the server.
    assert written == [0]
    assert next(chunks) == b"0,"
    assert next(chunks) == b"1,"
    assert written == [0, 1]
    assert b"".join(chunks).endswith(b"98,99,end")
    body.close()
