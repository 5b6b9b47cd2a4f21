"""Remembered permission checks for a kept tracker database.

Roundup's ``Security.hasPermission`` (``roundup/security.py``) answers in
two passes over the user's roles (``db.user.get_roles(userid)``): first the
permissions without a check function, then those with one.  The first pass
reads nothing but the permission tables the tracker's ``schema.py`` built
(``Permission.test`` ignores the user and the item when there is no check
function), so its answer is a function of ``(permission, classname,
property, roles)`` alone.  An index page asks it about a thousand times per
request (``is_view_ok`` of every property of every row: a tenth of the
page's CPU time); :func:`install` makes a database's ``security`` remember
that first pass, so a repeated question costs the ``get_roles`` call and a
dictionary look-up.

What stays exactly as Roundup does it:

* the user's roles are read through ``db.user.get_roles(userid)`` on every
  call (a role change in the database, or a tracker's own ``get_roles``,
  takes effect at once);
* permissions with a check function run on every call, with the same
  arguments, in the same order, after the first pass failed;
* argument errors (an ``itemid`` without ``classname``) raise the same
  ``ValueError``.

``Security.hasSearchPermission`` (which properties an index page offers
for searching and sorting: ``HTMLClass.properties``, about 60 calls per
index page) is remembered the same way: its answer reads the user's roles
(``get_roles``, as above, on every call), then only the schema (classes,
properties, ``labelprop``, ``orderprop``) and the permission tables
(``Role.searchable``, ``Permission.searchable``: permissions without a
check function), so it is a function of ``(classname, property, roles)``.

What is remembered is forgotten when the tracker adds a role or a
permission through ``Security.addRole``, ``addPermission`` or
``addPermissionToRole`` after opening (the schema is read again anyway
when :mod:`roundup_wsgi.dbpool` opens a database anew because
``schema.py``, ``detectors/`` or ``extensions/`` changed).  Each database
has its own ``Security``, so trackers served by one process never share
what is remembered.  Nothing is installed (Roundup's own method answers)
when the tracker or an extension replaced ``Security``, ``Role`` or
``Permission`` methods (:func:`install` returns ``False``).  The
replacement itself: :mod:`roundup_wsgi.patches.security`.
"""

from __future__ import annotations

from typing import Any

from roundup import hyperdb
from roundup.backends import rdbms_common

from .patches import security as security_patch

__all__ = ["MAX_REMEMBERED", "SUPPORTED", "install", "installed"]

#: Answers remembered per database before they are all forgotten (a bound
#: on memory: the number of distinct questions is the schema's classes x
#: properties x permission names x role combinations in use).
MAX_REMEMBERED = 20_000

#: False where the installed Roundup checks permissions another way than
#: the one the cache mirrors (Roundup 2.4 has no ``Role.hasPermission``).
SUPPORTED = security_patch.SUPPORTED

#: ``Database.getnode`` methods whose cache hit :meth:`_RememberingSecurity.roles`
#: repeats (PostgreSQL's only adds a savepoint for ``allow_abort=False``).
_GETNODES: set[Any] = {rdbms_common.Database.getnode}
try:
    from roundup.backends import back_postgresql
except ImportError:  # pragma: no cover - psycopg2 not installed
    pass
else:
    _GETNODES.add(back_postgresql.Database.getnode)

#: The first item of the keys of remembered ``hasSearchPermission`` answers.
_SEARCH = "hasSearchPermission"


class _RememberingSecurity:
    """The replacement ``hasPermission`` of one ``Security`` instance."""

    __slots__ = ("answers", "multilinks", "role_lists", "security")

    def __init__(self, security: Any, multilinks: tuple[str, ...] | None) -> None:
        self.security = security
        #: ``(permission, classname, property, roles)`` -> first-pass answer;
        #: ``(_SEARCH, classname, property, roles)`` -> search answer.
        self.answers: dict[tuple[Any, ...], Any] = {}
        #: The user class's Multilink properties, or ``None`` when
        #: :meth:`roles` must call ``get_roles``.
        self.multilinks = multilinks
        #: A user's ``roles`` value -> the roles ``get_roles`` yields for it.
        self.role_lists: dict[str, tuple[str, ...]] = {}

    def roles(self, userid: str) -> tuple[str, ...]:
        """``tuple(db.user.get_roles(userid))``.

        Roundup's ``get_roles`` reads the user through ``db.getnode``; when
        the user is in the database's node cache with its Multilinks read,
        that ``getnode`` only moves it to the front of the cache's LRU list
        and counts a cache hit: done here the same way, without the rest.
        """
        db = self.security.db
        multilinks = self.multilinks
        if multilinks is not None:
            key = ("user", userid)
            node = db.cache.get(key)
            if node is not None and all(name in node for name in multilinks):
                db._cache_refresh(key)
                if __debug__:
                    db.stats["cache_hits"] += 1
                value = node["roles"]
                try:
                    return self.role_lists[value]
                except KeyError:
                    roles = tuple(hyperdb.iter_roles(value))
                    if len(self.role_lists) >= MAX_REMEMBERED:
                        self.role_lists.clear()
                    self.role_lists[value] = roles
                    return roles
                except TypeError:
                    pass
        return tuple(db.user.get_roles(userid))

    def forget(self) -> None:
        self.answers.clear()

    def has_search_permission(self, userid: str, classname: str, property: str) -> Any:
        """Same arguments and answer (``0`` or ``1``) as Roundup's
        ``Security.hasSearchPermission``."""
        security = self.security
        table = security.role
        roles = tuple(r for r in self.roles(userid) if r and r in table)
        key = (_SEARCH, classname, property, roles)
        try:
            return self.answers[key]
        except KeyError:
            found = security.roleHasSearchPermission(classname, property, *roles)
            if len(self.answers) >= MAX_REMEMBERED:
                self.answers.clear()
            self.answers[key] = found
            return found
        except TypeError:  # an unhashable argument: no remembering
            return security.roleHasSearchPermission(classname, property, *roles)

    def has_permission(
        self,
        permission: str,
        userid: str,
        classname: str | None = None,
        property: str | None = None,
        itemid: str | None = None,
        skip_permissions_with_check: bool = False,
    ) -> bool:
        """Same arguments and answer as Roundup's ``Security.hasPermission``."""
        if itemid and classname is None:
            raise ValueError("classname must accompany itemid")
        roles = self.roles(userid)
        key = (permission, classname, property, roles)
        question = (permission, userid, classname, property, itemid)
        try:
            found = self.answers[key]
        except KeyError:
            found = self._any_role(roles, *question, False)
            if len(self.answers) >= MAX_REMEMBERED:
                self.answers.clear()
            self.answers[key] = found
        except TypeError:  # an unhashable argument: no remembering
            found = self._any_role(roles, *question, False)
        if found:
            return True
        if skip_permissions_with_check:
            return False
        # Roundup reads the roles again for its second pass: so do we (the
        # same cache hit counted, the same get_roles calls).
        return self._any_role(self.roles(userid), *question, True)

    def _any_role(
        self,
        roles: tuple[str, ...],
        permission: str,
        userid: str,
        classname: str | None,
        property: str | None,
        itemid: str | None,
        with_check: bool,
    ) -> bool:
        """One pass of Roundup's ``Security.hasPermission``: True if one of
        ``roles`` (unknown names skipped) has a matching permission, among
        those with a check function (``with_check``) or without."""
        security = self.security
        table = security.role
        for rolename in roles:
            if not rolename or rolename not in table:
                continue
            if table[rolename].hasPermission(
                security.db,
                permission,
                userid,
                classname,
                property,
                itemid,
                with_check,
            ):
                return True
        return False


def install(db: Any) -> bool:
    """Make ``db.security.hasPermission`` remember its first pass (see the
    module docstring).

    :param db: an open tracker database (``Tracker.open`` result).
    :returns: ``True`` if installed (or already installed), ``False`` when
        Roundup's own method must answer: no ``security``, a ``Security``
        subclass, or a replaced ``Security.hasPermission``,
        ``Role.hasPermission`` or ``Permission.test``, or an instance
        attribute ``hasPermission`` already set (a test's mock).
    """
    security: Any = getattr(db, "security", None)
    if installed(db):
        return True
    if not security_patch.unchanged(security):
        return False
    cache = _RememberingSecurity(security, _user_multilinks(db))
    security_patch.install(security, cache)
    return True


def installed(db: Any) -> bool:
    """True if :func:`install` is in effect on ``db``."""
    memo = security_patch.installed(getattr(db, "security", None))
    return isinstance(memo, _RememberingSecurity)


#: Roundup's functions :meth:`_RememberingSecurity.roles` stands in for.
_GET_ROLES = hyperdb.Class.get_roles
_ITER_ROLES = hyperdb.iter_roles


def _user_multilinks(db: Any) -> tuple[str, ...] | None:
    """The user class's Multilink property names if ``get_roles`` can be
    answered from the node cache (Roundup's own ``get_roles``,
    ``iter_roles`` and ``getnode``, a ``roles`` property), else ``None``."""
    try:
        user = db.getclass("user")
    except (KeyError, AttributeError):
        return None
    if (
        getattr(type(user), "get_roles", None) is not _GET_ROLES
        or "get_roles" in getattr(user, "__dict__", {})
        or hyperdb.iter_roles is not _ITER_ROLES
        or getattr(type(db), "getnode", None) not in _GETNODES
        or "getnode" in getattr(db, "__dict__", {})
        or not isinstance(getattr(db, "cache", None), dict)
        or not isinstance(getattr(db, "stats", None), dict)
    ):
        return None
    properties = user.getprops()
    if "roles" not in properties:
        return None
    return tuple(
        name for name, prop in properties.items() if isinstance(prop, hyperdb.Multilink)
    )
