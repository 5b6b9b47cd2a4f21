"""``LoginAction.verifyPassword`` with the verification remembered.

Replaces ``roundup.cgi.actions.LoginAction.verifyPassword`` (process-wide)
by the function :mod:`roundup_wsgi.authmemo` gives (its memo logic; each
``Client`` without a memo gets Roundup's method).  Roundup 2.4.0 to the
2.7 snapshot: ``Client.determine_user`` logs an HTTP Basic auth client (REST,
XML-RPC) in on every request, and ``verifyPassword`` hashes the password
again each time (PBKDF2-SHA512, 250,000 rounds since 2.5; 2.4.0:
PBKDF2-SHA1, 2,000,000): 0.1 to 0.2 s of CPU per API call.  A tracker whose
``login`` action overrides ``verifyPassword`` keeps its own (only
Roundup's method is replaced).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from roundup.cgi.actions import LoginAction

from .targets import Target

__all__ = ["ORIGINAL", "TARGETS", "install", "installed", "remove"]

TARGETS = (
    Target("roundup.cgi.actions:LoginAction.verifyPassword", "(self, userid, givenpw)"),
)

#: Roundup's ``LoginAction.verifyPassword``, as imported.
ORIGINAL: Callable[[Any, str, Any], Any] = LoginAction.verifyPassword

#: Marks the replacement (``function.roundup_wsgi = True``).
MARK = "roundup_wsgi"

_lock = threading.Lock()


def installed() -> bool:
    """True once :func:`install` replaced ``LoginAction.verifyPassword``."""
    return getattr(LoginAction.verifyPassword, MARK, False) is True


def install(replacement: Callable[[Any, str, Any], Any]) -> bool:
    """Make ``replacement(action, userid, givenpw)`` the method (once; any
    thread, any number of times).

    :returns: ``True`` if installed (or already), ``False`` when something
        else replaced Roundup's method first (it is left alone).
    """
    with _lock:
        if installed():
            return True
        if LoginAction.verifyPassword is not ORIGINAL:
            return False
        setattr(replacement, MARK, True)
        # What it replaces (inspect.signature reads the original's).
        replacement.__wrapped__ = ORIGINAL  # type: ignore[attr-defined]
        LoginAction.verifyPassword = replacement
        return True


def remove() -> None:
    """Give ``LoginAction`` Roundup's method back (tests)."""
    with _lock:
        if installed():
            LoginAction.verifyPassword = ORIGINAL
