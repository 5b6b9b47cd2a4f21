"""The results of ``roundup-wsgi check``: one :class:`Finding` per check,
and :func:`report`, which prints them as the command does."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .output import plural

__all__ = ["MAX_LISTED", "Finding", "listing", "report"]

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


#: The label :func:`report` prints before a finding, by its ``ok``.
LABELS = {True: "ok  ", False: "FAIL", None: "skip"}


def report(findings: Iterable[Finding]) -> int:
    """Print each finding (``ok``, ``FAIL``, ``skip`` or ``warn``, the check
    and the message; a ``fix:`` line below), then the verdict.

    :returns: the exit status: 0 when every check passed, warned or was
        skipped, 1 when one failed.
    """
    failed = 0
    for finding in findings:
        label = "warn" if finding.warn else LABELS[finding.ok]
        print(f"{label}  {finding.check}: {finding.message}")
        if finding.fix:
            print(f"      fix: {finding.fix}")
        failed += finding.ok is False
    if failed:
        print(f"{plural(failed, 'check')} failed.", flush=True)
        return 1
    print("All checks passed.", flush=True)
    return 0


def listing(paths: list[str]) -> str:
    """The first :data:`MAX_LISTED` paths, comma-separated, and ``and N
    more``."""
    shown = ", ".join(paths[:MAX_LISTED])
    more = len(paths) - MAX_LISTED
    return shown + (f" and {more} more" if more > 0 else "")
