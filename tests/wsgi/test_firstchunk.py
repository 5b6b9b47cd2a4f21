"""Tests of roundup_wsgi.wsgi.firstchunk: telling servers that start the
response only with the first chunk (hypercorn) from the others."""

from __future__ import annotations

import functools
from typing import Any

from helpers.wsgi import StartResponseRecorder, as_hypercorn

from roundup_wsgi.wsgi.firstchunk import (
    FIRST_CHUNK_KEY,
    note_first_chunk,
    waits_for_first_chunk,
)


def test_waits_for_first_chunk_through_wrappers_and_environ() -> None:
    """A middleware's own ``start_response`` hides the server's: the answer
    follows ``__wrapped__`` (functools.wraps) or what a middleware above
    recorded in the environ (note_first_chunk)."""
    server = as_hypercorn(StartResponseRecorder())

    def plain(*args: Any) -> Any:
        return server(*args)

    @functools.wraps(server)
    def wrapping(*args: Any) -> Any:
        return server(*args)

    wrapping.__module__ = __name__  # functools.wraps copied hypercorn's
    assert waits_for_first_chunk(server)
    assert not waits_for_first_chunk(plain)
    assert waits_for_first_chunk(wrapping)
    env: dict[str, Any] = {}
    note_first_chunk(env, server)
    assert waits_for_first_chunk(plain, env)
    note_first_chunk(env, StartResponseRecorder())  # the outermost one wins
    assert waits_for_first_chunk(plain, env)
    other: dict[str, Any] = {}
    note_first_chunk(other, StartResponseRecorder())
    assert not waits_for_first_chunk(server, other)  # the noted server's
    # A recorded answer wins over any start_response.
    assert not waits_for_first_chunk(server, {FIRST_CHUNK_KEY: False})
    assert waits_for_first_chunk(plain, {**other, FIRST_CHUNK_KEY: True})
