"""Every replacement of a Roundup object's attribute, in one place.

Each module replaces or wraps one Roundup attribute, says in its
docstring what, for which Roundup versions and why (the upstream
behaviour it works around), and lists in ``TARGETS`` the Roundup
functions it was written against (:class:`.targets.Target`: import path
and signature; tests/patches/ fail when one is gone or changed).  The glue
modules keep the logic (the pool, the memos, the error classification)
and call these to install it.

:data:`REGISTRY` is the install order; each entry says when it is
installed and by whom:

* process-wide, by the dispatcher: :mod:`.pythonexpr` (template
  ``python:`` expressions), :mod:`.verify_password` (``authmemo``);
* per tracker, as it is opened: :mod:`.tracker_classes`;
* per kept database, as :mod:`roundup_wsgi.dbrecycle` opens it:
  :mod:`.sqlite_sharing`, :mod:`.security` (``permissions``),
  :mod:`.getnode`, :mod:`.fire_auditors`;
* per request, on the ``Client`` and its database: :mod:`.client_errors`
  (by ``ClientGuard``, :mod:`roundup_wsgi.failures`), which installs
  :mod:`.database_errors` (with :mod:`.storefile` and
  :mod:`.db_close`'s rollback) when ``opendb`` opened the database;
  :mod:`.serve_static_file` (dispatcher); :mod:`.db_close`'s interception
  (a leased database, :mod:`roundup_wsgi.dbpool`).

Also here: :mod:`.targets` (what a patch targets, and whether it changed)
and :mod:`.roundup_types` (the Protocols of the objects patched).
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import NamedTuple

from . import (
    client_errors,
    database_errors,
    db_close,
    fire_auditors,
    getnode,
    pythonexpr,
    security,
    serve_static_file,
    sqlite_sharing,
    storefile,
    tracker_classes,
    verify_password,
)
from .targets import Target, changed

__all__ = ["REGISTRY", "Patch", "applicable", "changed_targets", "find"]


def _always() -> bool:
    return True


def _security_supported() -> bool:
    return security.SUPPORTED


class Patch(NamedTuple):
    """One entry of :data:`REGISTRY`.

    :ivar name: the module's name in this package.
    :ivar module: the module (its ``TARGETS``, ``install``...).
    :ivar target: what it replaces, in words (``"db.security.hasPermission"``).
    :ivar scope: ``"process"``, ``"tracker"``, ``"database"`` or
        ``"request"``: how long one installation lasts.
    :ivar applies: ``True`` if the installed Roundup has what the patch
        needs (read from Roundup's objects, not its version string).
    """

    name: str
    module: ModuleType
    target: str
    scope: str
    applies: Callable[[], bool] = _always


#: Every patch, in install order.
REGISTRY: tuple[Patch, ...] = (
    Patch("pythonexpr", pythonexpr, "PythonExpr.__call__", "process"),
    Patch("verify_password", verify_password, "LoginAction.verifyPassword", "process"),
    Patch(
        "tracker_classes",
        tracker_classes,
        "tracker.TemplatingUtils, .Client, .MailGW",
        "tracker",
    ),
    Patch(
        "sqlite_sharing",
        sqlite_sharing,
        "db.conn, db.cursor, db.sql_open_connection",
        "database",
    ),
    Patch(
        "security",
        security,
        "db.security.hasPermission, .hasSearchPermission, .add*",
        "database",
        _security_supported,
    ),
    Patch("getnode", getnode, "db.getnode (PostgreSQL)", "database", getnode.applies),
    Patch("fire_auditors", fire_auditors, "db.<class>.fireAuditors", "database"),
    Patch(
        "client_errors",
        client_errors,
        "client.opendb, client.send_error_to_admin",
        "request",
    ),
    Patch(
        "database_errors",
        database_errors,
        "db.sql, db.sql_commit, db.commit, db.storefile, db.close",
        "request",
    ),
    Patch("storefile", storefile, "db.storefile", "request"),
    Patch("db_close", db_close, "db.close", "request"),
    Patch(
        "serve_static_file", serve_static_file, "client.serve_static_file", "request"
    ),
)


def find(name: str) -> Patch:
    """The :data:`REGISTRY` entry called ``name``.

    :raises KeyError: no such patch.
    """
    for patch in REGISTRY:
        if patch.name == name:
            return patch
    raise KeyError(f"no patch {name!r}: one of {[p.name for p in REGISTRY]}")


def applicable() -> list[str]:
    """The names of the patches the installed Roundup takes, in order."""
    return [patch.name for patch in REGISTRY if patch.applies()]


def changed_targets() -> dict[str, str]:
    """``"patch: target path"`` -> why it no longer fits (``"missing"``,
    ``"signature ..."``), for the applicable patches; empty when all fit."""
    found: dict[str, str] = {}
    for patch in REGISTRY:
        if not patch.applies():
            continue
        targets: tuple[Target, ...] = patch.module.TARGETS
        for target in targets:
            why = changed(target)
            if why is not None:
                found[f"{patch.name}: {target.path}"] = why
    return found
