"""Tests of roundup_wsgi.wsgi.threadmode: wsgi1_to_wsgi2's "thread" mode
hands each write() over a bounded queue from its worker thread.  (What
every mode does is tested in test_adapters.py and test_wsgi1call.py.)"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from helpers.adapters import TEXT, environ

from roundup_wsgi.wsgi.adapters import wsgi1_to_wsgi2
from roundup_wsgi.wsgi.wsgi1call import StartResponseError


def test_thread_mode_blocks_writes_while_the_queue_is_full() -> None:
    written: list[int] = []
    third = threading.Event()

    def app(environ: Any, start_response: Any) -> Any:
        write = start_response("200 OK", list(TEXT))
        for number in range(100):
            written.append(number)
            if number == 2:
                third.set()
            write(b"%d," % number)
        return []

    _, _, body = wsgi1_to_wsgi2(app, "thread", queue_size=1)(environ())
    chunks = iter(body)
    assert next(chunks) == b"0,"
    assert third.wait(30)
    # One chunk handed over, one queued, one write blocked: no more.
    assert len(written) <= 3
    assert b"".join(chunks).endswith(b"98,99,")
    body.close()
    assert written == list(range(100))


def test_write_from_another_thread_is_an_error() -> None:
    errors: list[BaseException] = []

    def app(environ: Any, start_response: Any) -> Any:
        write = start_response("200 OK", list(TEXT))

        def elsewhere() -> None:
            try:
                write(b"from a thread of its own")
            except BaseException as error:
                errors.append(error)

        other = threading.Thread(target=elsewhere)
        other.start()
        other.join()
        return [b"body"]

    _, _, body = wsgi1_to_wsgi2(app, "thread")(environ())
    assert list(body) == [b"body"]  # nothing written: handed over as is
    assert len(errors) == 1
    with pytest.raises(StartResponseError, match=r"outside its worker thread"):
        raise errors[0]
