"""Diagnose a tracker before serving it: ``roundup-wsgi check TRACKER_HOME``.

:func:`run_checks` returns one :class:`~.findings.Finding` per check, in
order: the tracker home, its config.ini and the options Roundup needs
(:mod:`.check_config`), the tracker opening (schema, detectors,
extensions), the template utils its extensions register and the backend
(:mod:`.check_tracker`), files the serving user must read and the
directories it must write (:mod:`.check_permissions`), and ``[tracker]
web`` against the URL the tracker is served at.  A failed finding carries
the fix.  Checks that need an earlier one to pass are skipped when it fails.

With ``cluster=True`` (``roundup-wsgi check --cluster``) the settings that
break several app hosts behind a load balancer are checked too
(:func:`~.check_cluster.cluster_checks`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from ..tracker import TrackerHomeError, check_tracker_home
from .check_cluster import cluster_checks, filesystem_type
from .check_config import read_config, web_finding
from .check_permissions import ServingUser, permission_checks
from .check_tracker import UtilRegistry, backend_finding, open_tracker
from .findings import Finding

__all__ = ["Finding", "ServingUser", "cluster_checks", "filesystem_type", "run_checks"]


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
    try:
        path = check_tracker_home(home)
    except TrackerHomeError as exc:
        message, _, rest = str(exc).partition(": create")
        yield Finding("tracker home", False, message, "create" + rest)
        return
    yield Finding("tracker home", True, path)

    config, backend, found = read_config(path)
    yield from found
    if config is None:
        return
    registry = UtilRegistry()
    tracker, opens = open_tracker(path, registry)
    yield opens
    if tracker is not None:
        yield registry.finding(path)
        yield backend_finding(tracker, path, backend)
        yield from permission_checks(path, config, user)
    if cluster:
        yield from cluster_checks(config, path, url)
    elif tracker is not None:
        yield web_finding(config, path, url)
