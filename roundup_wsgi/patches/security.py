"""A database's ``security`` answering permission questions from a memo.

Replaces, on one ``roundup.security.Security`` instance (each database has
its own), ``hasPermission`` and ``hasSearchPermission`` by the methods of
:mod:`roundup_wsgi.permissions`' memo, and wraps ``addRole``,
``addPermission`` and ``addPermissionToRole`` to forget it.  Roundup 2.5
to the 2.7 snapshot (2.4 has no ``Role.hasPermission``, which the memo's
second pass calls: not installed there).  Roundup's ``hasPermission``
walks every role's permission tables on every call, about a thousand
calls per index page (a tenth of its CPU time); the first pass's answer
depends only on ``(permission, classname, property, roles)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from roundup.security import Permission, Role, Security

from .roundup_types import SecurityLike
from .targets import Target

__all__ = [
    "SUPPORTED",
    "TARGETS",
    "Memo",
    "install",
    "installed",
    "remove",
    "unchanged",
]

_SECURITY = "roundup.security:Security."
TARGETS = (
    Target(
        _SECURITY + "hasPermission",
        "(self, permission, userid, classname=None, property=None, itemid=None, "
        "skip_permissions_with_check=False)",
    ),
    Target(_SECURITY + "hasSearchPermission", "(self, userid, classname, property)"),
    Target(
        _SECURITY + "roleHasSearchPermission", "(self, classname, property, *rolenames)"
    ),
    Target(_SECURITY + "addRole", "(self, **propspec)"),
    Target(_SECURITY + "addPermission", "(self, **propspec)"),
    Target(
        _SECURITY + "addPermissionToRole",
        "(self, rolename, permission, classname=None, properties=None, "
        "check=None, props_only=None)",
    ),
    Target(
        "roundup.security:Role.hasPermission",
        "(self, db, perm, uid, classname, property, itemid, chk)",
    ),
    Target("roundup.security:Role.searchable", "(self, classname, propname)"),
    Target(
        "roundup.security:Permission.test",
        "(self, db, permission, classname, property, userid, itemid)",
    ),
    Target("roundup.security:Permission.searchable", "(self, classname, property)"),
)

#: Roundup's methods the memo relies on, as imported (``None``: missing).
_ROUNDUP_METHODS = tuple(
    (cls, name, getattr(cls, name, None))
    for cls, name in (
        (Security, "hasPermission"),
        (Role, "hasPermission"),
        (Permission, "test"),
        (Security, "hasSearchPermission"),
        (Security, "roleHasSearchPermission"),
        (Role, "searchable"),
        (Permission, "searchable"),
    )
)

#: False where Roundup checks permissions another way (2.4).
SUPPORTED = all(original is not None for _, _, original in _ROUNDUP_METHODS)

#: ``Security`` methods that change the permission tables.
MUTATORS = ("addRole", "addPermission", "addPermissionToRole")

#: The instance attributes :func:`install` sets.
_REPLACED = ("hasPermission", "hasSearchPermission", *MUTATORS)


class Memo(Protocol):
    """What answers instead (``permissions._RememberingSecurity``)."""

    def has_permission(self, permission: str, userid: str, *args: Any) -> bool: ...

    def has_search_permission(
        self, userid: str, classname: str, property: str
    ) -> Any: ...

    def forget(self) -> None: ...


def unchanged(security: object) -> bool:
    """True if ``security`` is Roundup's own ``Security`` with Roundup's
    methods (nothing replaced them, on the classes or the instance)."""
    if not SUPPORTED or type(security) is not Security:
        return False
    if any(getattr(cls, name) is not orig for cls, name, orig in _ROUNDUP_METHODS):
        return False
    state = vars(security)
    return "hasPermission" not in state and "hasSearchPermission" not in state


def _forgetting(method: Callable[..., Any], memo: Memo) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        finally:
            memo.forget()

    wrapper.__name__ = getattr(method, "__name__", "wrapper")
    wrapper.__doc__ = getattr(method, "__doc__", None)
    return wrapper


def install(security: SecurityLike, memo: Memo) -> None:
    """Let ``memo`` answer ``security``'s permission questions and forget
    them when a role or permission is added.  Check :func:`unchanged`
    first."""
    state = vars(security)
    for name in MUTATORS:
        state[name] = _forgetting(getattr(security, name), memo)
    state["hasPermission"] = memo.has_permission
    state["hasSearchPermission"] = memo.has_search_permission


def installed(security: object) -> Any:
    """The memo :func:`install` gave ``security``, or ``None``."""
    state = getattr(security, "__dict__", None) or {}
    return getattr(state.get("hasPermission"), "__self__", None)


def remove(security: SecurityLike) -> None:
    """Give ``security`` Roundup's methods back (tests)."""
    state = vars(security)
    for name in _REPLACED:
        state.pop(name, None)
