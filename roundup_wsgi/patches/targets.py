"""What each patch replaces in Roundup, and whether it is still there.

A :class:`Target` names a Roundup function by its import path and the
``inspect.signature`` the patch was written for (a replacement of a class
attribute sets ``__wrapped__`` to Roundup's function, so the signature is
still Roundup's once installed); :func:`changed` says
whether the installed Roundup still has it so (tests/patches/ fail when
it does not: the patch must be read again against the new code).
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any, NamedTuple

__all__ = ["Target", "changed", "find"]


class Target(NamedTuple):
    """A Roundup function a patch replaces or wraps.

    :ivar path: ``"module:Class.attribute"``, e.g.
        ``"roundup.cgi.actions:LoginAction.verifyPassword"``.
    :ivar signature: ``str(inspect.signature(function))`` as the patch
        expects it, e.g. ``"(self, userid, givenpw)"``.
    :ivar older: the signatures of older supported Roundups the patch was
        also checked against (e.g. a parameter renamed since).
    """

    path: str
    signature: str
    older: tuple[str, ...] = ()


def find(path: str) -> Any:
    """The object at ``path`` (``"module:Class.attribute"``), or ``None``
    when the module cannot be imported (e.g. psycopg2 missing) or has no
    such attribute."""
    module_name, _, attributes = path.partition(":")
    try:
        found: Any = importlib.import_module(module_name)
    except ImportError:
        return None
    for name in attributes.split("."):
        found = (
            vars(found).get(name)
            if isinstance(found, type)
            else getattr(found, name, None)
        )
        if found is None:
            return None
    return found


def changed(target: Target) -> str | None:
    """``None`` if ``target`` exists with its signature, else why not:
    ``"missing"`` or ``"signature (…)"`` (the installed one)."""
    found = find(target.path)
    if found is None:
        return "missing"
    signature = str(inspect.signature(found))
    if signature == target.signature or signature in target.older:
        return None
    return f"signature {signature}"
