"""Find the system programs that some real-process tests need.

Debian packages (nginx, apache2 with apxs, PostgreSQL, Chromium) and pip
packages that only build where those are present (``mod_wsgi``) are installed
by ``.ci/run``.  On a developer's machine without them the tests that need
them are skipped with a message naming what to install; under CI
(``CI=true``) a missing program is a failure, so CI cannot go green by
skipping.
"""

from __future__ import annotations

import glob
import os
import shutil

import pytest

__all__ = ["in_ci", "require_program"]


def in_ci() -> bool:
    """True when running under CI (the ``CI`` environment variable is set and
    not ``0``/``false``), where every test must run."""
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def require_program(name: str, install_hint: str, *patterns: str) -> str:
    """Return the path of the program *name*, skipping the calling test when
    it is missing (failing it under CI).

    :param name: the program, looked up on ``PATH`` (e.g. ``"nginx"``).
    :param install_hint: how to get it, e.g. ``"apt-get install nginx-light"``.
    :param patterns: extra glob patterns to try when it is not on ``PATH``
        (e.g. ``"/usr/lib/postgresql/*/bin/initdb"``); the last match in
        sorted order (the newest version) wins.
    :returns: an absolute path.
    """
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if found is None:
        matches = sorted(p for pattern in patterns for p in glob.glob(pattern))
        found = matches[-1] if matches else None
    if found is not None:
        return found
    message = f"{name} not found: {install_hint}"
    if in_ci():
        pytest.fail(message + " (CI must run every test)")
    pytest.skip(message)
