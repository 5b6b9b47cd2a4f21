"""``roundup-wsgi check``'s checks of permissions: the serving user can
read the tracker home and write its database directory."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .findings import Finding, listing

__all__ = ["ServingUser", "permission_checks"]

#: The tracker home's directories of code and templates the server reads.
CODE_DIRECTORIES = ("html", "detectors", "extensions", "lib")


@dataclass(frozen=True)
class ServingUser:
    """The account the WSGI server runs as: name, uid and all its group ids."""

    name: str
    uid: int
    gids: frozenset[int]

    @classmethod
    def current(cls) -> ServingUser:
        """The user running this process (effective uid and groups)."""
        import pwd

        uid = os.geteuid()
        try:
            name = pwd.getpwuid(uid).pw_name
        except KeyError:
            name = str(uid)
        return cls(name, uid, frozenset([os.getegid(), *os.getgroups()]))

    @classmethod
    def named(cls, name: str) -> ServingUser:
        """Look a user up in the password database (``pwd``, ``grp``).

        :raises KeyError: no such user.
        """
        import pwd

        entry = pwd.getpwnam(name)
        gids = os.getgrouplist(entry.pw_name, entry.pw_gid)
        return cls(entry.pw_name, entry.pw_uid, frozenset(gids))

    def may(self, path: str, want: int) -> bool:
        """True if this user may access ``path`` as ``want`` (bits of
        ``os.R_OK | os.W_OK | os.X_OK``) by its mode bits; root may always
        (POSIX permissions; ACLs and read-only mounts are not considered)."""
        if self.uid == 0:
            return True
        info = os.stat(path)
        if info.st_uid == self.uid:
            bits = (info.st_mode >> 6) & 7
        elif info.st_gid in self.gids:
            bits = (info.st_mode >> 3) & 7
        else:
            bits = info.st_mode & 7
        return bits & want == want


def permission_checks(path: str, config: Any, user: str | None) -> Iterator[Finding]:
    """The findings ``serving user`` (only when ``user`` is unknown),
    ``readable`` and ``db writable`` for the tracker at ``path``.

    :param config: the tracker's ``roundup.configuration.CoreConfig``.
    :param user: the account the server runs as; None: the current user.
    """
    try:
        who = ServingUser.current() if user is None else ServingUser.named(user)
    except KeyError:
        yield Finding(
            "serving user",
            False,
            f"there is no user {user!r} on this machine",
            "name the account the WSGI server runs as, e.g. --user www-data",
        )
        return
    yield _readable(path, who, as_root_hint=who.uid == 0 and user is None)
    yield _db_writable(path, str(config["DATABASE"]), who)


def _readable(path: str, who: ServingUser, as_root_hint: bool) -> Finding:
    """``readable``: ``who`` can read the tracker home, its config.ini and
    every file of its code directories (:data:`CODE_DIRECTORIES`)."""
    readable = [path, os.path.join(path, "config.ini")]
    for name in CODE_DIRECTORIES:
        directory = os.path.join(path, name)
        if os.path.isdir(directory):
            readable += [d for d in _tree(directory) if not _in_pycache(d)]
    unreadable = [
        p
        for p in readable
        if not who.may(p, os.R_OK | (os.X_OK if os.path.isdir(p) else 0))
    ]
    if unreadable:
        return Finding(
            "readable",
            False,
            f"user {who.name} cannot read {listing(unreadable)}",
            f"let {who.name} read the tracker home, e.g. 'chmod -R o+rX {path}' "
            f"or 'chgrp -R GROUP {path}; chmod -R g+rX {path}'",
        )
    hint = (
        " (as root; give --user with the account the server runs as)"
        if as_root_hint
        else ""
    )
    return Finding("readable", True, f"user {who.name} can read the tracker home{hint}")


def _db_writable(path: str, database: str, who: ServingUser) -> Finding:
    """``db writable``: ``who`` can write the database directory, each
    directory below it and each file directly in it."""
    if not os.path.isdir(database):
        return Finding(
            "db writable",
            False,
            f"the database directory {database} does not exist",
            f"run 'roundup-admin -i {path} initialise' or create it and make "
            f"it writable by {who.name}",
        )
    # The server writes new files into every directory (sessions, attachments)
    # and into the files directly in db/ (the sqlite database, locks).
    writable = [database]
    writable += [os.path.join(database, e) for e in sorted(os.listdir(database))]
    writable += [p for p in _tree(database) if os.path.isdir(p)]
    unwritable = []
    for candidate in dict.fromkeys(writable):
        is_dir = os.path.isdir(candidate)
        want = os.W_OK | (os.X_OK | os.R_OK if is_dir else os.R_OK)
        if not who.may(candidate, want):
            unwritable.append(candidate)
    if unwritable:
        return Finding(
            "db writable",
            False,
            f"user {who.name} cannot write {listing(unwritable)}",
            f"run 'chown -R {who.name} {database}' (or give its group "
            f"write access: 'chmod -R g+rwX {database}')",
        )
    return Finding("db writable", True, f"user {who.name} can write {database}")


def _tree(top: str) -> Iterator[str]:
    """``top`` and every directory and file below it."""
    yield top
    for root, dirs, files in os.walk(top):
        for name in sorted(dirs) + sorted(files):
            full = os.path.join(root, name)
            if not stat.S_ISLNK(os.lstat(full).st_mode):
                yield full


def _in_pycache(path: str) -> bool:
    return "__pycache__" in path.split(os.sep)
