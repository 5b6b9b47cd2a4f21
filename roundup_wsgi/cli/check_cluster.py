"""``roundup-wsgi check --cluster``: the settings that break a tracker
served by several app hosts behind a load balancer (``deploy/cluster/
README.rst`` explains the recipe): a backend without a database server, a
database server on loopback, a host-local full-text indexer, a Redis
session database, a db directory (with the attachments in ``db/files``) on
a local filesystem, and ``[tracker] web`` that is not the balancer's URL.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

from .check_config import web_finding
from .findings import Finding

__all__ = [
    "DATABASE_INDEXERS",
    "LOCAL_FILESYSTEMS",
    "MOUNTS",
    "SERVER_BACKENDS",
    "SHARED_FILESYSTEMS",
    "cluster_checks",
    "filesystem_type",
]

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
    yield web_finding(config, path, url, balancer=True)


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
