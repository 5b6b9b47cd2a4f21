"""A server without a write callable, for the tests of the write() adapters
(roundup_wsgi.wsgi.adapters and the modes under it).

:func:`serve` calls an application as granian would (its ``start_response``
returns no write callable), reads some or all chunks and closes the
app_iter once, recording what happened in :class:`Served`; :class:`Recorder`
is a body that counts its ``close()`` calls and may raise :class:`Boom`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from wsgiref.util import setup_testing_defaults

from .wsgi import StartResponseRecorder

#: The headers of the test applications.
TEXT = [("Content-Type", "text/plain")]


class Boom(Exception):  # noqa: N818 - a test's own exception
    """The exception the test applications raise."""


def environ(**extra: Any) -> dict[str, Any]:
    """A minimal PEP 3333 environ (wsgiref's testing defaults), with
    ``extra`` keys set over it."""
    env: dict[str, Any] = {"QUERY_STRING": ""}
    setup_testing_defaults(env)
    env.update(extra)
    return env


@dataclass
class Served:
    """What the fake server saw."""

    start_response: StartResponseRecorder = field(default_factory=StartResponseRecorder)
    chunks: list[bytes] = field(default_factory=list)
    error: BaseException | None = None  # raised by the call or the iteration
    close_error: BaseException | None = None  # raised by close()

    @property
    def status(self) -> str | None:
        return self.start_response.status

    @property
    def headers(self) -> list[tuple[str, str]] | None:
        return self.start_response.headers

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)


def serve(app: Any, *, read: int | None = None) -> Served:
    """Call ``app`` as a server without a write callable would; read ``read``
    chunks (all if None), then close the app_iter (once)."""
    served = Served()

    try:
        app_iter = app(environ(), served.start_response)
    except Exception as error:
        served.error = error
        return served
    try:
        iterator = iter(app_iter)
        while read is None or len(served.chunks) < read:
            try:
                served.chunks.append(next(iterator))
            except StopIteration:
                break
    except Exception as error:
        served.error = error
    finally:
        try:
            app_iter.close()
        except Exception as error:
            served.close_error = error
    return served


class Recorder:
    """A body iterable that counts its close() calls and may raise at an index."""

    def __init__(self, chunks: list[bytes], raise_at: int | None = None) -> None:
        self.chunks = chunks
        self.raise_at = raise_at
        self.closes = 0

    def __iter__(self) -> Iterator[bytes]:
        for index, chunk in enumerate(self.chunks):
            if index == self.raise_at:
                raise Boom(f"iterable #{index}")
            yield chunk
        if self.raise_at == len(self.chunks):
            raise Boom("iterable end")

    def close(self) -> None:
        self.closes += 1


# -- the property test ---------------------------------------------------------
