"""Tests of roundup_wsgi.wsgi.wsgi1call: the start_response and write()
rules of PEP 3333 that every mode of wsgi1_to_wsgi2 keeps.

Each rule is checked through :func:`wsgi1_to_wsgi2` in every mode (the
``_Call`` and ``_Body`` of this module are shared by all three); outputs
are checked by ``wsgiref.validate.validator`` where it allows them.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any
from wsgiref.validate import validator

import pytest
from helpers.adapters import TEXT, Boom, Recorder, environ, serve

from roundup_wsgi.wsgi.adapters import MODES, iterable_only, wsgi1_to_wsgi2
from roundup_wsgi.wsgi.wsgi1call import StartResponseError


@pytest.mark.parametrize("mode", MODES)
def test_start_response_never_called_is_an_error_not_a_hang(mode: str) -> None:
    body = Recorder([b"", b""])

    def app(environ: Any, start_response: Any) -> Any:
        return body

    with pytest.raises(StartResponseError, match=r"without calling start_response"):
        wsgi1_to_wsgi2(app, mode)(environ())
    assert body.closes == 1

    def eager(environ: Any, start_response: Any) -> Any:
        return [b"body"]

    with pytest.raises(StartResponseError, match=r"yielded body bytes without"):
        wsgi1_to_wsgi2(eager, mode)(environ())


@pytest.mark.parametrize("mode", MODES)
def test_start_response_called_at_first_iteration(mode: str) -> None:
    def app(environ: Any, start_response: Any) -> Iterator[bytes]:
        yield b""
        start_response("200 OK", list(TEXT))
        yield b"late"
        yield b" start"

    # (Only the output is validated: wsgiref's validator itself wants
    # start_response called before the first iteration, PEP 3333 does not.)
    served = serve(validator(iterable_only(app, mode)))
    assert (served.status, served.body, served.error) == ("200 OK", b"late start", None)


@pytest.mark.parametrize("mode", MODES)
def test_second_start_response_without_exc_info_is_an_error(mode: str) -> None:
    def app(environ: Any, start_response: Any) -> Any:
        start_response("200 OK", list(TEXT))
        start_response("404 Not Found", list(TEXT))
        return []

    with pytest.raises(StartResponseError, match=r"a second time without exc_info"):
        wsgi1_to_wsgi2(app, mode)(environ())


@pytest.mark.parametrize("mode", MODES)
def test_write_of_text_is_a_type_error(mode: str) -> None:
    def text(environ: Any, start_response: Any) -> Any:
        start_response("200 OK", list(TEXT))("not bytes")
        return []

    with pytest.raises(TypeError, match=r"write\(\) needs bytes, not str"):
        wsgi1_to_wsgi2(text, mode)(environ())


@pytest.mark.parametrize("mode", MODES)
def test_exc_info_in_the_iterable_after_headers_is_re_raised(mode: str) -> None:
    def app(environ: Any, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", list(TEXT))
        yield b"part"
        try:
            raise Boom("late")
        except Boom:
            start_response("500 Internal Server Error", list(TEXT), sys.exc_info())
        yield b"never"

    served = serve(validator(iterable_only(validator(app), mode)))
    assert served.status == "200 OK"
    assert served.body == b"part"
    assert isinstance(served.error, Boom)


@pytest.mark.parametrize("mode", MODES)
def test_bad_status_or_headers_are_type_errors(mode: str) -> None:
    def app(environ: Any, start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", b"text/plain")])
        return []

    with pytest.raises(TypeError, match=r"headers must be \(str, str\) tuples"):
        wsgi1_to_wsgi2(app, mode)(environ())


@pytest.mark.parametrize("mode", MODES)
def test_write_after_returning_the_iterable_is_an_error(mode: str) -> None:
    def app(environ: Any, start_response: Any) -> Iterator[bytes]:
        write = start_response("200 OK", list(TEXT))

        def body() -> Iterator[bytes]:
            yield b"first"
            write(b"too late")

        return body()

    served = serve(iterable_only(app, mode))
    assert (served.status, served.body) == ("200 OK", b"first")
    assert isinstance(served.error, StartResponseError)
    assert "after it returned its iterable" in str(served.error)
