"""The shapes of PEP 3333 objects, for type hints across the package.

Like Werkzeug, the standard names come from typeshed's ``_typeshed.wsgi``
under ``TYPE_CHECKING`` (a stub-only module: importing it at run time
fails); at run time the same names are plain aliases, so they can be used
in ``cast()`` or ``isinstance``-free annotations alike.

Our own :class:`StartResponse` differs from typeshed's in one point: its
return value may be ``None``.  PEP 3333 says ``start_response`` "must return
a write(body_data) callable", but granian, bjoern and hypercorn return
``None``; code that uses the write callable must check.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

__all__ = [
    "Environ",
    "ExcInfo",
    "HeaderList",
    "StartResponse",
    "WSGIApp",
    "WriteCallable",
]

#: ``sys.exc_info()`` of a real exception (PEP 3333's ``exc_info`` argument).
ExcInfo = tuple[type[BaseException], BaseException, TracebackType]
#: Response headers: ``[(name, value), ...]``, native strings (PEP 3333,
#: "The start_response() Callable").
HeaderList = list[tuple[str, str]]
#: The write callable ``start_response`` returns: ``write(body_data)``.
WriteCallable = Callable[[bytes], object]


class StartResponse(Protocol):
    """PEP 3333's ``start_response(status, response_headers, exc_info=None)``,
    returning the write callable (or, on some servers, ``None``)."""

    def __call__(
        self, status: str, headers: HeaderList, exc_info: ExcInfo | None = ..., /
    ) -> WriteCallable | None: ...


if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment as Environ

    #: A PEP 3333 application: ``app(environ, start_response) -> app_iter``.
    WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]
else:
    #: The WSGI environ: ``{CGI variable or wsgi.* key: value}`` (PEP 3333).
    Environ = dict[str, Any]
    #: A PEP 3333 application: ``app(environ, start_response) -> app_iter``.
    WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]
