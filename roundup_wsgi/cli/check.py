"""Diagnose a tracker before serving it: ``roundup-wsgi check TRACKER_HOME``.

:func:`run_checks` returns one :class:`Finding` per check, in order: the
tracker home, its config.ini, the tracker opening (schema, detectors,
extensions), the template utils its extensions register (a name registered
twice is reported with both places), the backend (database initialised and
reachable), files the serving user must read and the directories it must
write, and ``[tracker] web`` against the URL the tracker is served at.  A failed
finding carries the fix.  Checks that need an earlier one to pass are
skipped when it fails.

With ``cluster=True`` (``roundup-wsgi check --cluster``) the settings that
break several app hosts behind a load balancer are checked too
(:func:`cluster_checks`): a backend without a database server, a host-local
full-text indexer, a Redis session database, a db directory (with the
attachments in ``db/files``) on a local filesystem, a database server on
loopback, and ``[tracker] web`` that is not the balancer's URL.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..tracker import (
    INITIALISED,
    NOT_INITIALISED,
    TrackerHomeError,
    check_tracker_home,
    database_state,
    host_port,
    unset_options,
)

__all__ = ["Finding", "ServingUser", "cluster_checks", "filesystem_type", "run_checks"]

#: Paths listed in one finding before "and N more".
MAX_LISTED = 5


@dataclass(frozen=True)
class Finding:
    """The result of one check.

    :ivar check: what was checked, e.g. ``"backend"``.
    :ivar ok: True (passed), False (failed) or None (skipped).
    :ivar message: what was found.
    :ivar fix: how to fix a failure ('' when it passed).
    :ivar warn: with ``ok`` None: a risk the check cannot decide (printed
        as ``warn``; it does not fail the check).
    """

    check: str
    ok: bool | None
    message: str
    fix: str = ""
    warn: bool = False


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


def run_checks(
    home: str | os.PathLike[str],
    url: str | None = None,
    user: str | None = None,
    *,
    cluster: bool = False,
) -> list[Finding]:
    """Run every check on the tracker at ``home``.

    :param home: the tracker home.
    :param url: the URL the tracker is served at (as browsers see it), e.g.
        ``https://bugs.example/``; None skips the comparison with
        ``[tracker] web``.
    :param user: the account the server runs as (e.g. ``www-data``); None
        means the user running the check.
    :param cluster: also run :func:`cluster_checks` (``url`` is then the
        load balancer's URL).
    :returns: the findings, in the order above, the cluster's last.
    """
    return list(_checks(os.fspath(home), url, user, cluster))


def _checks(
    home: str, url: str | None, user: str | None, cluster: bool
) -> Iterator[Finding]:
    from roundup.configuration import CoreConfig

    try:
        path = check_tracker_home(home)
    except TrackerHomeError as exc:
        message, _, rest = str(exc).partition(": create")
        yield Finding("tracker home", False, message, "create" + rest)
        return
    yield Finding("tracker home", True, path)

    try:
        config: Any = CoreConfig(path)
    except Exception as exc:
        yield Finding(
            "config.ini",
            False,
            f"{os.path.join(path, 'config.ini')} cannot be read: {_one_line(exc)}",
            "correct the option or line it names in config.ini",
        )
        return
    unset = unset_options(config)
    if any(option.name == "RDBMS_BACKEND" for option in unset):
        backend = "unset"
    else:
        backend = config["RDBMS_BACKEND"]
    yield Finding("config.ini", True, f"read; backend {backend}")
    yield _required_options(unset, path)

    registry = _UtilRegistry()
    try:
        tracker = registry.open(path)
    except Exception as exc:
        yield Finding(
            "tracker opens",
            False,
            f"Roundup cannot open the tracker: {type(exc).__name__}: {_one_line(exc)}",
            "fix the error in the file it names (schema.py, detectors/, "
            "extensions/, interfaces.py), then run the check again",
        )
        if cluster:
            yield from cluster_checks(config, path, url)
        return
    yield Finding("tracker opens", True, "schema, detectors and extensions load")
    yield registry.finding(path)
    yield _backend(tracker, path, backend)
    yield from _permissions(path, config, user)
    if cluster:
        yield from cluster_checks(config, path, url)
    else:
        yield _web(config, path, url)


class _UtilRegistry:
    """Where each template util name was registered, while a tracker opens.

    Roundup 2.4-2.6 let a later ``registerUtil``/``registerUtilMethod`` of
    a name replace the earlier one without a word; Roundup's development
    line (2.7) refuses to open such a tracker (``ValueError``).  The tracker
    is opened with the registrations recorded; a name registered again is
    noted with both places (file:line of the calls) and not passed on, so
    the check behaves the same on every Roundup.
    """

    #: The ``Tracker`` methods that register a template util.
    METHODS = ("registerUtil", "registerUtilMethod")

    def __init__(self) -> None:
        #: name -> "file:line" of its first registration.
        self.first: dict[str, str] = {}
        #: (name, first place, second place) of each duplicate.
        self.duplicates: list[tuple[str, str, str]] = []

    def open(self, path: str) -> Any:
        """Open the tracker at ``path`` (optimised: extensions run once),
        recording its util registrations."""
        from ..isolation import tracker_class

        base = tracker_class()
        attributes = {
            method: self._recording(getattr(base, method), method)
            for method in self.METHODS
            if hasattr(base, method)  # Roundup 2.4 has no registerUtilMethod
        }
        recording = type("Tracker", (base,), attributes)
        return recording(path, optimize=1)

    def _recording(self, register: Callable[..., Any], method: str) -> Any:
        def recorded(tracker: Any, name: str, function: Any) -> None:
            caller = sys._getframe(1)
            place = f"{caller.f_code.co_filename}:{caller.f_lineno}"
            first = self.first.get(name)
            if first is not None:
                self.duplicates.append((name, first, place))
                return
            self.first[name] = place
            register(tracker, name, function)

        recorded.__name__ = method
        return recorded

    def finding(self, path: str) -> Finding:
        """The ``template utils`` finding: failed if a name was registered
        twice (both places named, relative to the tracker home)."""
        if not self.duplicates:
            return Finding(
                "template utils",
                True,
                f"{len(self.first)} registered by extensions, no name twice",
            )

        def here(place: str) -> str:
            filename, _, line = place.rpartition(":")
            if filename.startswith(path + os.sep):
                filename = os.path.relpath(filename, path)
            return f"{filename}:{line}"

        found = "; ".join(
            f"utils.{name} is registered in {here(first)} and again in {here(second)}"
            for name, first, second in self.duplicates
        )
        return Finding(
            "template utils",
            False,
            found + " (Roundup 2.4-2.6 keep the last one loaded; "
            "Roundup 2.7 refuses to open the tracker)",
            "rename or remove one of the two registrations",
        )


def _backend(tracker: Any, path: str, backend: str) -> Finding:
    server = backend in ("postgresql", "mysql")
    server_hint = (
        "check rdbms_host, rdbms_port, rdbms_name, rdbms_user and "
        "rdbms_password in the [rdbms] section of config.ini, and that the "
        "database server runs and accepts this user"
    )
    initialise = f"run 'roundup-admin -i {path} initialise'"
    try:
        # Found without opening it: Roundup's backends create a missing
        # database (or schema) on open.
        state, detail = database_state(tracker.config)
        if state == NOT_INITIALISED:
            return Finding(
                "backend",
                False,
                f"the {backend} database of this tracker is not initialised ({detail})",
                initialise,
            )
        if state != INITIALISED and not tracker.exists():
            if server:  # Roundup cannot tell "unreachable" from "missing"
                return Finding(
                    "backend",
                    False,
                    f"the {backend} database cannot be reached or does not exist",
                    f"{server_hint}; if it is reachable, {initialise}",
                )
            return Finding(
                "backend",
                False,
                f"the {backend} database of this tracker is not initialised",
                initialise,
            )
        db = tracker.open("admin")
        try:
            users = len(db.user.list())
        finally:
            db.close()
    except Exception as exc:
        hint = (
            server_hint
            if server
            else "check the database files in the db directory and the "
            "schema.py and detectors the error names"
        )
        return Finding(
            "backend",
            False,
            f"the {backend} database cannot be opened: {_one_line(exc)}",
            hint,
        )
    return Finding("backend", True, f"{backend} database opens ({users} users)")


def _permissions(path: str, config: Any, user: str | None) -> Iterator[Finding]:
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
    readable = [path, os.path.join(path, "config.ini")]
    for name in ("html", "detectors", "extensions", "lib"):
        directory = os.path.join(path, name)
        if os.path.isdir(directory):
            readable += [d for d in _tree(directory) if not _in_pycache(d)]
    unreadable = [
        p
        for p in readable
        if not who.may(p, os.R_OK | (os.X_OK if os.path.isdir(p) else 0))
    ]
    if unreadable:
        yield Finding(
            "readable",
            False,
            f"user {who.name} cannot read {_listing(unreadable)}",
            f"let {who.name} read the tracker home, e.g. 'chmod -R o+rX {path}' "
            f"or 'chgrp -R GROUP {path}; chmod -R g+rX {path}'",
        )
    else:
        hint = (
            " (as root; give --user with the account the server runs as)"
            if who.uid == 0 and user is None
            else ""
        )
        yield Finding(
            "readable", True, f"user {who.name} can read the tracker home{hint}"
        )

    database = str(config["DATABASE"])
    if not os.path.isdir(database):
        yield Finding(
            "db writable",
            False,
            f"the database directory {database} does not exist",
            f"run 'roundup-admin -i {path} initialise' or create it and make "
            f"it writable by {who.name}",
        )
        return
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
        yield Finding(
            "db writable",
            False,
            f"user {who.name} cannot write {_listing(unwritable)}",
            f"run 'chown -R {who.name} {database}' (or give its group "
            f"write access: 'chmod -R g+rwX {database}')",
        )
    else:
        yield Finding("db writable", True, f"user {who.name} can write {database}")


def _required_options(unset: list[Any], path: str) -> Finding:
    """The ``required options`` finding: failed if an option Roundup needs
    has no value (reading it raises ``OptionUnsetError``)."""
    ini = os.path.join(path, "config.ini")
    if not unset:
        return Finding("required options", True, "every required option is set")
    names = ", ".join(f"[{option.section}] {option.setting}" for option in unset)
    return Finding(
        "required options",
        False,
        f"{names} {'is' if len(unset) == 1 else 'are'} not set: Roundup "
        "answers every page with an error",
        f"set {'it' if len(unset) == 1 else 'them'} in {ini} (e.g. 'web = "
        "https://bugs.example/' in [tracker], 'domain = bugs.example' and "
        "'host = localhost' in [mail])",
    )


def _web(config: Any, path: str, url: str | None, balancer: bool = False) -> Finding:
    served = "the load balancer's URL" if balancer else "the address browsers use"
    ini = os.path.join(path, "config.ini")
    if not config.options["TRACKER_WEB"].isset():
        return Finding(
            "tracker web",
            False,
            "[tracker] web is not set",
            f"set 'web = {url or 'https://your.host/'}' in the [tracker] "
            f"section of {ini} ({served})",
        )
    web = str(config["TRACKER_WEB"])
    parts = urlsplit(web)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return Finding(
            "tracker web",
            False,
            f"[tracker] web = {web} is not an absolute http(s) URL",
            f"set 'web = https://your.host/' in the [tracker] section of {ini}",
        )
    if url is None:
        return Finding(
            "tracker web",
            None,
            f"[tracker] web = {web}; not compared (give --url URL, {served})",
            warn=balancer,
        )
    want = url if url.endswith("/") else url + "/"
    if _normal(web) == _normal(want):
        return Finding("tracker web", True, f"[tracker] web = {web} matches {url}")
    return Finding(
        "tracker web",
        False,
        f"[tracker] web = {web} but the tracker is served at {want}"
        f"{' (the balancer)' if balancer else ''}: Roundup "
        "refuses form posts whose Origin/Referer/Host differ from [tracker] "
        "web and builds its links from it",
        f"set 'web = {want}' in the [tracker] section of {ini} (or serve it at {web})",
    )


#: Backends whose database lives in a server every app host can reach.
SERVER_BACKENDS = ("postgresql", "mysql")
#: Indexers that keep their index in the tracker's database.
DATABASE_INDEXERS = ("native", "native-fts")
#: Where Linux lists the mounted filesystems (``proc(5)``, /proc/mounts).
MOUNTS = "/proc/mounts"
#: Filesystem types shared between machines (``mount(8)`` type names).
SHARED_FILESYSTEMS = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "ceph", "glusterfs", "lustre"}
    | {"gpfs", "ocfs2", "gfs2", "beegfs", "afs", "fuse.glusterfs", "fuse.cephfs"}
)
#: Filesystem types that live on one machine only.
LOCAL_FILESYSTEMS = frozenset(
    {"ext2", "ext3", "ext4", "xfs", "btrfs", "zfs", "tmpfs", "ramfs", "overlay"}
    | {"f2fs", "vfat", "exfat", "ntfs", "ntfs3", "reiserfs", "jfs", "bcachefs"}
    | {"squashfs", "hfsplus", "apfs"}
)
_LOOPBACK_HOSTS = ("", "localhost", "::1", "ip6-localhost")


def cluster_checks(
    config: Any, path: str, url: str | None, mounts: str = MOUNTS
) -> Iterator[Finding]:
    """The settings that break a tracker served by several app hosts behind
    a load balancer (``deploy/cluster/README.rst`` explains the recipe).

    :param config: the tracker's ``roundup.configuration.CoreConfig``.
    :param path: the tracker home (absolute).
    :param url: the load balancer's URL as browsers use it (None: not
        compared).
    :param mounts: the mount table to read filesystem types from
        (``/proc/mounts`` format).
    :returns: findings named ``cluster backend``, ``cluster database
        host``, ``cluster indexer``, ``cluster sessions``, ``cluster
        files`` and ``tracker web``, in this order.
    """
    ini = os.path.join(path, "config.ini")
    backend = str(config["RDBMS_BACKEND"])
    server = backend in SERVER_BACKENDS
    if server:
        yield Finding(
            "cluster backend",
            True,
            f"backend {backend}: one database server for every host",
        )
    else:
        yield Finding(
            "cluster backend",
            False,
            f"backend {backend} keeps the database in files in the db "
            "directory of one machine: several hosts cannot share it (its "
            "locks do not work over NFS)",
            f"move to PostgreSQL: 'roundup-admin -i {path} export DIR', set "
            f"'backend = postgresql' and rdbms_host, rdbms_name, rdbms_user, "
            f"rdbms_password in the [rdbms] section of {ini}, then "
            f"'roundup-admin -i {path} import DIR' (Roundup's administration guide, "
            "'Migrating Backends')",
        )
    if server:
        yield _cluster_database_host(config, ini)
    yield _cluster_indexer(config, path, ini)
    yield _cluster_sessions(config, backend, ini)
    yield _cluster_files(str(config["DATABASE"]), mounts)
    yield _web(config, path, url, balancer=True)


def _cluster_database_host(config: Any, ini: str) -> Finding:
    host = str(config["RDBMS_HOST"] or "")
    if host.lower() in _LOOPBACK_HOSTS or host.startswith(("127.", "/")):
        where = (
            f"rdbms_host = {host}" if host else "rdbms_host is empty (a unix socket)"
        )
        return Finding(
            "cluster database host",
            None,
            f"{where}: each host reaches a database server on its own machine; "
            "right only if every app host runs there",
            f"set rdbms_host in the [rdbms] section of {ini} to the database "
            "server's address as the app hosts reach it",
            warn=True,
        )
    return Finding("cluster database host", True, f"rdbms_host = {host}")


def _cluster_indexer(config: Any, path: str, ini: str) -> Finding:
    indexer = str(config["INDEXER"] or "")
    fix = (
        f"set 'indexer = native' in the [main] section of {ini} (the index "
        f"lives in the database), then 'roundup-admin -i {path} reindex'"
    )
    if indexer in DATABASE_INDEXERS:
        return Finding("cluster indexer", True, f"indexer {indexer}: in the database")
    if indexer:
        return Finding(
            "cluster indexer",
            False,
            f"indexer {indexer} keeps its index in files of the db directory: "
            "searches on one host miss what the others indexed, and its locks "
            "do not work over NFS",
            fix,
        )
    picked = next(
        (name for name in ("xapian", "whoosh") if _importable(name)), "native"
    )
    return Finding(
        "cluster indexer",
        False,
        "indexer is not set: Roundup uses xapian or whoosh (files in the db "
        "directory, one index per host) wherever they are installed, native "
        f"elsewhere (here: {picked})",
        fix,
    )


def _cluster_sessions(config: Any, backend: str, ini: str) -> Finding:
    sessions = str(config["SESSIONDB_BACKEND"] or "")
    if sessions == "redis":
        return Finding(
            "cluster sessions",
            False,
            "[sessiondb] backend = redis: Roundup accepts Redis only with the "
            "sqlite and anydbm backends, which a cluster cannot use",
            f"leave 'backend =' empty in the [sessiondb] section of {ini}: with "
            "postgresql Roundup keeps sessions and one-time keys in the "
            "database every host shares",
        )
    if backend in SERVER_BACKENDS:
        return Finding(
            "cluster sessions",
            True,
            f"sessions and one-time keys in the {backend} database",
        )
    return Finding(
        "cluster sessions",
        False,
        f"sessions and one-time keys are {sessions or backend} files in the db "
        "directory: a login on one host is unknown to the others",
        "move to PostgreSQL (see 'cluster backend'); it keeps them in the database",
    )


def _cluster_files(database: str, mounts: str) -> Finding:
    files = os.path.join(database, "files")
    where = files if os.path.isdir(files) else database
    found = filesystem_type(where, mounts)
    fix = (
        "put the tracker home (at least its db directory, where db/files holds "
        "every attachment and message text) on storage every host mounts at "
        "the same path, e.g. NFS (deploy/cluster/README.rst)"
    )
    if found is None:
        return Finding(
            "cluster files",
            None,
            f"cannot tell which filesystem holds {where} (no {mounts})",
            fix,
            warn=True,
        )
    mount_point, kind = found
    if kind in SHARED_FILESYSTEMS:
        return Finding(
            "cluster files",
            True,
            f"{where} is on {kind} ({mount_point}), shared storage",
        )
    if kind in LOCAL_FILESYSTEMS:
        return Finding(
            "cluster files",
            False,
            f"{where} is on a local {kind} filesystem ({mount_point}): "
            "attachments written on one host are missing on the others",
            fix,
        )
    return Finding(
        "cluster files",
        None,
        f"{where} is on {kind} ({mount_point}); cannot tell whether other "
        "hosts share it",
        fix,
        warn=True,
    )


def filesystem_type(path: str, mounts: str = MOUNTS) -> tuple[str, str] | None:
    """The mount point and filesystem type holding ``path``.

    :param path: any path (symbolic links are resolved; a missing path is
        looked up as given).
    :param mounts: a mount table in the ``/proc/mounts`` format (``proc(5)``:
        device, mount point with ``\\040``-style octal escapes, type, ...).
    :returns: ``(mount point, type)``, e.g. ``("/srv", "nfs4")``; None when
        the table cannot be read.
    """
    try:
        with open(mounts, encoding="utf-8", errors="replace") as table:
            lines = table.read().splitlines()
    except OSError:
        return None
    target = os.path.realpath(path)
    best: tuple[str, str] | None = None
    for line in lines:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = _unescape_mount(fields[1])
        inside = (
            point == "/"
            or target == point
            or target.startswith(point.rstrip("/") + "/")
        )
        # Later lines mount over earlier ones at the same point.
        if inside and (best is None or len(point) >= len(best[0])):
            best = (point, fields[2])
    return best


def _unescape_mount(text: str) -> str:
    """Undo the octal escapes of /proc/mounts (``\\040`` is a space)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)


def _importable(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _normal(url: str) -> tuple[str, str, int, str]:
    """A URL's scheme, host, port (default filled in) and path with a slash."""
    parts = urlsplit(url)
    host, port = host_port(url)
    path = parts.path if parts.path.endswith("/") else parts.path + "/"
    return parts.scheme.lower(), host, port, path


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


def _listing(paths: list[str]) -> str:
    shown = ", ".join(paths[:MAX_LISTED])
    more = len(paths) - MAX_LISTED
    return shown + (f" and {more} more" if more > 0 else "")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
