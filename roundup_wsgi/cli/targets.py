"""What ``roundup-wsgi serve`` serves: one tracker, several, or the demo.

:func:`prepare_targets` checks each tracker home, creates the demo on first
run, and warns where a tracker's ``[tracker] web`` is not where it is
served (Roundup's CSRF check would refuse form posts).  Nothing is changed
here: the demo's new ``[tracker] web`` is returned for ``serve`` to write
once the start cannot fail for another reason.
"""

from __future__ import annotations

import configparser
import os
import re
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..tracker import (
    TrackerHomeError,
    check_tracker_home,
    host_port,
    same_origin,
    tracker_web,
)
from .argtypes import DEFAULT_WEB
from .demo import (
    ADMIN_USERNAME,
    DEMO_HOME,
    DEMO_MARKER,
    DEMO_USERNAME,
    create_demo,
    demo_exists,
    is_demo,
)
from .output import PROG, CliError, config_path, note, warn

__all__ = ["Targets", "config_errors", "prepare_targets"]

#: A ``serve NAME=HOME`` mount name (one path segment).
_NAME = re.compile(r"[A-Za-z0-9._~-]+")


@dataclass(frozen=True)
class Targets:
    """The tracker(s) ``serve`` serves, checked.

    :ivar target: the tracker home, or ``{name: home}`` of ``NAME=HOME``
        arguments (for :func:`~roundup_wsgi.app.make_app`).
    :ivar description: how ``Serving ...`` names them.
    :ivar url: the URL to open.
    :ivar webs: ``{name: [tracker] web}`` (name ``""`` for a single home).
    :ivar repoint: the demo's new ``[tracker] web``, or None to keep it.
    """

    target: str | dict[str, str]
    description: str
    url: str
    webs: dict[str, str]
    repoint: str | None = None


def prepare_targets(
    home: str | None,
    trackers: dict[str, str],
    public: str | None,
    where: str,
    admin_password: str | None,
) -> Targets:
    """Check what ``serve`` serves: the ``NAME=HOME`` ``trackers``, else
    ``home`` (None: the demo, created on first run with ``admin_password``).

    :param public: the public URL (None: a Unix socket without ``--web``,
        not known here).
    :param where: the address listened on, the URL to open when
        ``public`` is None.
    :raises CliError: bad tracker home, broken config.ini.
    """
    if trackers:
        return Targets(
            trackers,
            _prepare_trackers(trackers, public, admin_password),
            public or where,
            {name: tracker_web(path) for name, path in trackers.items()},
        )
    target, url, repoint = _prepare_home(home, public, admin_password)
    return Targets(target, target, url, {"": repoint or tracker_web(target)}, repoint)


def _prepare_home(
    home: str | None, public: str | None, admin_password: str | None
) -> tuple[str, str, str | None]:
    """Prepare the one tracker ``serve`` serves (the demo when ``home`` is
    None) at the public URL ``public`` (None: a Unix socket without
    ``--web``, not known here); return ``(home, url to open, new [tracker]
    web of the demo or None)``: the caller rewrites the demo's config.ini
    once everything else has been checked.

    :raises CliError: bad tracker home, broken config.ini.
    """
    with config_errors(home or DEMO_HOME):
        try:
            if home is None:
                return _prepare_demo(public, admin_password)
            if admin_password is not None:
                note("--admin-password ignored: it only sets up the demo tracker")
            return (*_check_user_tracker(home, public), None)
        except TrackerHomeError as exc:
            raise CliError(str(exc)) from exc


@contextmanager
def config_errors(home: str) -> Iterator[None]:
    """Turn Roundup's errors reading ``home``'s config.ini into a
    :class:`CliError` naming the file."""
    from roundup.configuration import ConfigurationError

    try:
        yield
    except (ConfigurationError, configparser.Error) as exc:
        raise CliError(
            f"cannot read {config_path(home)}: {exc}; fix that setting or "
            "line in config.ini"
        ) from exc


def _prepare_trackers(
    trackers: dict[str, str], public: str | None, admin_password: str | None
) -> str:
    """Check the trackers ``serve NAME=HOME ...`` mounts and warn where
    ``[tracker] web`` is not ``<public>NAME/``; return their description.

    :raises CliError: a bad tracker home.
    """
    if admin_password is not None:
        note("--admin-password ignored: it only sets up the demo tracker")
    for name, given in trackers.items():
        try:
            home = check_tracker_home(given)
        except ValueError as exc:
            raise CliError(f"{name}={given}: {exc}") from exc
        if public is None:
            continue  # a Unix socket: the proxy's URL is not known here
        with config_errors(home):
            web = tracker_web(home)
        problem = _web_mismatch(home, web, public + name + "/", f"/{name}/")
        if problem:
            warn(problem)
    return ", ".join(f"{name}={home}" for name, home in trackers.items())


def _web_mismatch(home: str, web: str, expected: str, mount: str) -> str | None:
    """The warning for a tracker whose ``[tracker] web`` is ``web`` while
    it is served at ``expected`` (mounted at the path ``mount``), or None
    if they match.  Roundup's CSRF check compares the Origin/Referer of
    form posts with ``web``'s host and port; its links and the page
    addresses follow ``web``'s path."""
    config = config_path(home)
    fix = f"set 'web = {expected}' in the [tracker] section of {config}"
    if same_origin(web, expected):
        path = urlsplit(web).path or "/"
        if path.rstrip("/") == urlsplit(expected).path.rstrip("/"):
            return None
        name = path.strip("/")
        if mount == "/" and _NAME.fullmatch(name):
            fix = (
                f"serve it where its web says with '{PROG} serve "
                f"{name}={shlex.quote(home)}', or {fix}"
            )
        return (
            f"{config} sets [tracker] web = {web} but serve mounts the "
            f"tracker at {mount} ({expected}): its pages at {web} answer 404 "
            f"and its links lead there; {fix}."
        )
    return (
        f"{config} sets [tracker] web = {web} but it is served at "
        f"{expected}: Roundup rejects form posts (its CSRF check compares the "
        "Origin/Referer header with [tracker] web) and builds wrong links "
        f"unless they match; {fix}"
    )


def _prepare_demo(
    public: str | None, admin_password: str | None
) -> tuple[str, str, str | None]:
    """Create the demo on first run; else check that it is the demo
    (:func:`~.demo.is_demo`) and say whether its ``[tracker] web`` must
    become ``public`` (None: a Unix socket, the demo's is kept); return
    ``(home, url to open, new web or None)``.  A tracker at the demo's path
    that is not the demo is served as a user's tracker (never changed)."""
    home = os.path.abspath(DEMO_HOME)
    if not demo_exists(home):
        credentials = create_demo(
            home, web=public or DEFAULT_WEB, admin_password=admin_password
        )
        print(
            f"Demo tracker created at {credentials.home}; log in as "
            f"{ADMIN_USERNAME} / {credentials.admin_password} "
            f"(or {DEMO_USERNAME} / {credentials.demo_password})",
            flush=True,
        )
        return home, tracker_web(home), None
    if admin_password is not None:
        note(
            f"--admin-password ignored: the demo tracker {home} already exists "
            "(delete that directory to create a new one)"
        )
    if not is_demo(home):
        note(
            f"{home} has no {DEMO_MARKER}, so it is served as your tracker and "
            "its config.ini is left as it is (delete the directory to have "
            "the demo made there)"
        )
        return (*_check_user_tracker(home, public), None)
    web = tracker_web(home)
    if public is None:
        return home, web, None
    return home, public, None if web == public else public


def _check_user_tracker(tracker_home: str, public: str | None) -> tuple[str, str]:
    """Check a user-given tracker home, served at ``/``, and warn if its
    ``[tracker] web`` is not ``public`` (not known for a Unix socket
    without ``--web``: None); return ``(home, url to open)``."""
    home = check_tracker_home(tracker_home)
    web = tracker_web(home)
    if public is None:
        return home, web
    problem = _web_mismatch(home, web, public, "/")
    if problem is None:
        return home, web
    if not same_origin(web, public):
        host, port = host_port(web)
        problem += f", or serve on that host and port (--host {host} --port {port})"
    warn(problem + ".")
    return home, public
