"""The demo tracker ``roundup-wsgi serve`` creates when given no tracker home.

:func:`create_demo` installs a classic/sqlite tracker with
:func:`roundup_wsgi.tracker.create_tracker` and fills it with
:func:`~.demo_data.seed_demo` (the data is in :mod:`.demo_data`).

The demo is git-ignored and disposable: delete its directory to reset it.
:func:`create_demo` marks it with the file :data:`DEMO_MARKER`; only a
marked tracker is ever changed by :func:`repoint_demo`, so a tracker a user
made at the same path is left alone.
"""

from __future__ import annotations

import os
import secrets
import shutil
from dataclasses import dataclass

from ..tracker import TrackerHomeError, create_tracker, set_tracker_web, tracker_web
from .demo_data import (
    ADMIN_USERNAME,
    DEMO_USERNAME,
    SAMPLE_ISSUES,
    SampleFile,
    SampleIssue,
    SampleMessage,
    seed_demo,
)

__all__ = [
    "ADMIN_USERNAME",
    "DEMO_HOME",
    "DEMO_MARKER",
    "DEMO_USERNAME",
    "SAMPLE_ISSUES",
    "DemoCredentials",
    "SampleFile",
    "SampleIssue",
    "SampleMessage",
    "create_demo",
    "demo_exists",
    "generate_password",
    "is_demo",
    "repoint_demo",
    "seed_demo",
]

#: Where ``roundup-wsgi serve`` keeps the demo tracker, relative to the
#: current directory.
DEMO_HOME = os.path.join("trackers", "demo")

#: The file :func:`create_demo` writes into the demo's home: its presence
#: marks the tracker as the demo, whose ``[tracker] web`` ``roundup-wsgi
#: serve`` may rewrite (delete it to keep config.ini as it is).
DEMO_MARKER = "roundup-wsgi-demo.txt"
_MARKER_TEXT = """\
This tracker is the demo of roundup-wsgi, made by 'roundup-wsgi serve'.

While this file exists, 'roundup-wsgi serve' (given no tracker home) sets
[tracker] web in config.ini to the URL it serves the demo at, and says so;
the change is kept after the server stops.  Delete this file to keep
config.ini as it is; delete the whole directory to reset the demo.
"""


@dataclass(frozen=True)
class DemoCredentials:
    """Where the demo tracker is and how to log in to it.

    :ivar home: absolute path of the tracker home.
    :ivar admin_password: password of the ``admin`` user.
    :ivar demo_password: password of the ``demo`` user.
    """

    home: str
    admin_password: str
    demo_password: str


def generate_password() -> str:
    """Return a new random password: 16 URL-safe characters (96 bits)."""
    return secrets.token_urlsafe(12)


def demo_exists(home: str | os.PathLike[str] = DEMO_HOME) -> bool:
    """Tell whether the demo tracker has been created at ``home``.

    :param home: the demo tracker home.
    :returns: True if ``home`` holds a tracker (a ``config.ini``); False if
        it is missing or an empty directory, so :func:`create_demo` can make
        the demo there.
    :raises TrackerHomeError: ``home`` exists but is neither a tracker nor
        an empty directory (the message says to delete it).
    """
    path = os.path.abspath(os.fspath(home))
    if not os.path.exists(path):
        return False
    if os.path.isfile(os.path.join(path, "config.ini")):
        return True
    if os.path.isdir(path) and not os.listdir(path):
        return False
    raise TrackerHomeError(
        f"{path} exists but is not a Roundup tracker (it has no config.ini): "
        "delete it so that 'roundup-wsgi serve' can create the demo tracker there"
    )


def create_demo(
    home: str | os.PathLike[str] = DEMO_HOME,
    *,
    web: str,
    admin_password: str | None = None,
    demo_password: str | None = None,
) -> DemoCredentials:
    """Create and seed the demo tracker (classic template, sqlite backend),
    marked as the demo by the file :data:`DEMO_MARKER`.

    Mail the tracker sends (nosy lists) goes to ``<home>/mail-debug.log``.
    If seeding fails the half-made tracker is removed, so a later call can
    start again.

    :param home: directory to create; it must not exist or be empty.
    :param web: the ``[tracker] web`` URL, e.g. ``web_url(host, port)``.
    :param admin_password: password for ``admin``; generated with
        :func:`generate_password` if None.
    :param demo_password: password for ``demo``; generated if None.
    :returns: the absolute home and both passwords.
    :raises FileExistsError: ``home`` exists and is not an empty directory.
    :raises Exception: whatever Roundup raises creating the database.
    """
    credentials = DemoCredentials(
        home=os.path.abspath(os.fspath(home)),
        admin_password=admin_password or generate_password(),
        demo_password=demo_password or generate_password(),
    )
    create_tracker(
        credentials.home,
        admin_password=credentials.admin_password,
        template="classic",
        backend="sqlite",
        web=web,
    )
    try:
        seed_demo(credentials.home, demo_password=credentials.demo_password)
        with open(
            os.path.join(credentials.home, DEMO_MARKER), "x", encoding="utf-8"
        ) as marker:
            marker.write(_MARKER_TEXT)
    except BaseException:
        shutil.rmtree(credentials.home, ignore_errors=True)
        raise
    return credentials


def is_demo(home: str | os.PathLike[str]) -> bool:
    """True if ``home`` is a demo :func:`create_demo` made (it holds the
    file :data:`DEMO_MARKER`)."""
    return os.path.isfile(os.path.join(os.fspath(home), DEMO_MARKER))


def repoint_demo(home: str | os.PathLike[str], web: str) -> str | None:
    """Point the demo's ``[tracker] web`` at ``web`` if it is elsewhere.

    :param home: the demo tracker home.
    :param web: the URL it is about to be served at.
    :returns: the previous URL if it was changed, None if it already matched.
    :raises TrackerHomeError: ``home`` is not a tracker home, or not the
        demo (no :data:`DEMO_MARKER`): a user's tracker is never changed.
    :raises roundup.configuration.ConfigurationError: broken config.ini.
    """
    if not is_demo(home):
        raise TrackerHomeError(
            f"{os.path.abspath(os.fspath(home))} is not the demo tracker (it "
            f"has no {DEMO_MARKER}): its [tracker] web is left as it is"
        )
    current = tracker_web(home)
    if current == web:
        return None
    set_tracker_web(home, web)
    return current
