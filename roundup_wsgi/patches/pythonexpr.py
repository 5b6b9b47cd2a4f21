"""Template ``python:`` expressions evaluated with globals of their own.

Replaces ``roundup.cgi.PageTemplates.PythonExpr.PythonExpr.__call__``
(process-wide).  Roundup 2.4 to the 2.7 snapshot: its ``__call__`` binds
the expression's names (``context``, ``request``, ``db``...) by updating
the compiled function's globals, cached once per process, and calls it;
so the globals keep the last request's ``Client`` and database (and its
connections) alive, and two threads rendering one expression race (one
runs with the other's ``db``: another user's permissions, or sqlite's
``ProgrammingError`` "objects created in a thread").  The replacement calls
the compiled code with a fresh dict: the builtins and the names bound for
this evaluation.  A name the template does not define is a ``NameError``,
as in a fresh process.
"""

from __future__ import annotations

import threading
import types
from typing import Any

from roundup.cgi.PageTemplates.PythonExpr import PythonExpr

from .targets import Target

__all__ = ["TARGETS", "install", "installed", "remove"]

TARGETS = (
    Target(
        "roundup.cgi.PageTemplates.PythonExpr:PythonExpr.__call__", "(self, econtext)"
    ),
)

#: Roundup's ``PythonExpr.__call__``, as imported.
ORIGINAL = PythonExpr.__call__

_lock = threading.Lock()


def _call(self: Any, econtext: Any) -> Any:
    """``PythonExpr.__call__`` with globals of this evaluation only."""
    # Read by Roundup's template traceback (cgitb.pt_html).
    __traceback_info__ = f'python expression "{self.expr}"'
    f = self._f
    scope = {"__builtins__": f.__globals__["__builtins__"]}
    scope.update(self._bind_used_names(econtext))
    return types.FunctionType(f.__code__, scope, f.__name__)()


_call.roundup_wsgi = True  # type: ignore[attr-defined]
#: What it replaces (:func:`inspect.signature` reads the original's).
_call.__wrapped__ = ORIGINAL  # type: ignore[attr-defined]


def installed() -> bool:
    """True once :func:`install` replaced ``PythonExpr.__call__``."""
    return getattr(PythonExpr.__call__, "roundup_wsgi", False) is True


def install() -> bool:
    """Replace ``PythonExpr.__call__`` (once; any thread, any number of
    times).

    :returns: ``True`` (always applicable).
    """
    with _lock:
        if not installed():
            PythonExpr.__call__ = _call
    return True


def remove() -> None:
    """Give ``PythonExpr`` Roundup's ``__call__`` back (tests)."""
    with _lock:
        if installed():
            PythonExpr.__call__ = ORIGINAL
