"""Shared expectations for the tests of ``roundup-wsgi check``
(roundup_wsgi.cli.check): findings by name, and the tracker checks' order."""

from __future__ import annotations

from collections.abc import Iterable

from roundup_wsgi.cli.check import Finding

__all__ = ["TRACKER_CHECKS", "by_check"]

#: The checks ``run_checks`` makes of every tracker, in order (``"tracker
#: web"`` follows when a URL is given, the cluster checks with ``cluster``).
TRACKER_CHECKS = [
    "tracker home",
    "config.ini",
    "required options",
    "tracker opens",
    "template utils",
    "backend",
    "readable",
    "db writable",
]


def by_check(findings: Iterable[Finding]) -> dict[str, Finding]:
    """``{finding.check: finding}``: the findings by the name of their check."""
    return {finding.check: finding for finding in findings}
