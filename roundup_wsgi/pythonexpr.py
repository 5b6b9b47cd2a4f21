"""Template ``python:`` expressions that keep nothing of a request.

Roundup's page templates (Zope TAL, ``roundup.cgi.PageTemplates``) compile
each ``python:`` expression once per process into a function ``f`` and
cache it with the template.  Roundup 2.4 to 2.7's ``PythonExpr.__call__``
binds the expression's names (``context``, ``request``, ``db``, ``utils``
...) by *updating that function's globals* and then calls it, so:

* the globals keep the last request's objects after it ended: its
  ``Client``, its tracker database and that database's open connections,
  for as long as the process lives (per expression); a database closed by
  dropping it (an sqlite connection is closed by the collector when
  another thread releases it) is never closed, and sqlite then keeps every
  other closed connection's file descriptors on the same file open too;
* two threads rendering the same expression race: between one thread's
  update and its call another thread can bind its own names, so the
  expression runs with the other request's ``db`` and ``request`` (another
  user's permissions; with sqlite, ``ProgrammingError: SQLite objects
  created in a thread can only be used in that same thread``).

:func:`install` makes ``PythonExpr`` call the compiled code with globals
of its own for each evaluation (the builtins and the names bound for it),
which fixes both.  A name the expression uses but the template does not
define is then a ``NameError``, as in a fresh process, instead of the
value some earlier request bound.
"""

from __future__ import annotations

import threading
import types
from typing import Any

from roundup.cgi.PageTemplates.PythonExpr import PythonExpr

__all__ = ["install", "installed"]

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


def installed() -> bool:
    """True once :func:`install` replaced ``PythonExpr.__call__``."""
    return getattr(PythonExpr.__call__, "roundup_wsgi", False) is True


def install() -> None:
    """Replace Roundup's ``PythonExpr.__call__`` (process-wide, once; see
    the module docstring).  Safe to call from any thread, any number of
    times."""
    with _lock:
        if not installed():
            PythonExpr.__call__ = _call
