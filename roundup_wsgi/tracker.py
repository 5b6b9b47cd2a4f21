"""Tracker homes: checking them, reading and setting ``[tracker] web``,
opening them, and their databases' session tables.

A *tracker home* is the directory ``roundup-admin install`` makes: a
``config.ini``, ``schema.py``, ``html/`` templates, ``detectors/`` and a
``db/`` directory.  Everything here calls Roundup's own functions
(:class:`roundup.configuration.CoreConfig`, ``roundup.instance``).
Making a tracker home is :mod:`roundup_wsgi.install`'s, telling whether its
database is initialised :mod:`roundup_wsgi.dbstate`'s; their public names
are importable from here too.
"""

from __future__ import annotations

import logging
import os
from typing import Any
from urllib.parse import urlsplit

from .dbstate import INITIALISED, NOT_INITIALISED, UNKNOWN, database_state
from .install import (
    BACKENDS,
    OPTIONAL_PACKAGES,
    MissingPackageError,
    create_tracker,
    list_templates,
    name_missing_package,
)

__all__ = [
    "BACKENDS",
    "INITIALISED",
    "NOT_INITIALISED",
    "OPTIONAL_PACKAGES",
    "UNKNOWN",
    "MissingPackageError",
    "TrackerHomeError",
    "TrackerNotReadyError",
    "check_tracker_home",
    "check_tracker_ready",
    "close_database",
    "create_tracker",
    "database_state",
    "host_port",
    "list_templates",
    "name_missing_package",
    "set_tracker_web",
    "tracker_web",
    "web_url",
]

CONFIG_INI = "config.ini"

logger = logging.getLogger("roundup_wsgi")


class TrackerHomeError(ValueError):
    """A path that is not a usable Roundup tracker home.

    The message names the path and says how to fix it, e.g.
    ``/srv/bugs is not a Roundup tracker home (no config.ini): create one
    with 'roundup-wsgi init /srv/bugs'``.
    """


def check_tracker_home(home: str | os.PathLike[str]) -> str:
    """Return ``home`` as an absolute path if it looks like a tracker home.

    :param home: a directory holding a Roundup tracker.
    :returns: the absolute path.
    :raises TrackerHomeError: if ``home`` does not exist, is not a directory
        or has no ``config.ini`` (Roundup's mark of a tracker home).
    """
    path = os.path.abspath(os.fspath(home))
    fix = f"create one with 'roundup-wsgi init {path}' or 'roundup-admin install'"
    if not os.path.exists(path):
        raise TrackerHomeError(f"tracker home {path} does not exist: {fix}")
    if not os.path.isdir(path):
        raise TrackerHomeError(f"tracker home {path} is not a directory: {fix}")
    if not os.path.isfile(os.path.join(path, CONFIG_INI)):
        raise TrackerHomeError(
            f"{path} is not a Roundup tracker home (it has no {CONFIG_INI}): {fix}"
        )
    return path


class TrackerNotReadyError(TrackerHomeError):
    """A tracker home that cannot serve a page: a required config.ini
    option is unset, or its database is not initialised.  The message names
    the fix in one line (the option and section to set, or
    ``roundup-admin -i HOME initialise``).
    """


def unset_options(config: Any) -> list[Any]:
    """The options of ``config`` (a ``roundup.configuration.CoreConfig``)
    that are neither set nor have a default: reading one raises Roundup's
    ``OptionUnsetError`` (e.g. ``[tracker] web``, ``[mail] domain`` after
    ``roundup-admin install``).  ``[mail] password`` counts only with a
    ``[mail] username``, as in Roundup's own check.

    :returns: Roundup's ``Option`` objects (``.section``, ``.setting``), in
        config.ini order.
    """
    found: list[Any] = []
    seen: set[int] = set()
    for option in config.options.values():
        if id(option) in seen:
            continue
        seen.add(id(option))
        if option.isset():
            continue
        if option.name == "MAIL_PASSWORD" and not config["MAIL_USERNAME"]:
            continue
        found.append(option)
    return found


def unset_options_error(home: str, options: list[Any]) -> TrackerNotReadyError:
    """The error naming unset ``options`` and where to set them."""
    ini = os.path.join(home, CONFIG_INI)
    names = ", ".join(f"[{o.section}] {o.setting}" for o in options)
    example = ""
    if any(o.name == "TRACKER_WEB" for o in options):
        example = "; e.g. 'web = https://bugs.example/' in [tracker]"
    verb = "is" if len(options) == 1 else "are"
    return TrackerNotReadyError(
        f"the tracker {home} cannot serve pages: {names} {verb} not set: set "
        f"{'it' if len(options) == 1 else 'them'} in {ini}{example}"
    )


def check_tracker_ready(home: str, config: Any = None) -> None:
    """Refuse a tracker that cannot serve a page (called once at start).

    Checks, without creating anything: no required option is unset
    (``unset_options()``), and the database is initialised
    (:func:`~roundup_wsgi.dbstate.database_state`; a database that cannot be
    reached now is logged as a warning, not refused, so a server may start
    before its database server).

    :param home: an absolute tracker home (see :func:`check_tracker_home`).
    :param config: its ``CoreConfig``, if already read.
    :raises TrackerNotReadyError: the fix in one line.
    :raises roundup.configuration.ConfigurationError: config.ini is broken.
    """
    if config is None:
        from roundup.configuration import CoreConfig

        config = CoreConfig(home)
    unset = unset_options(config)
    if unset:
        raise unset_options_error(home, unset)
    state, detail = database_state(config)
    if state == NOT_INITIALISED:
        raise TrackerNotReadyError(
            f"the tracker {home} is not initialised ({detail}): run "
            f"'roundup-admin -i {home} initialise'"
        )
    if state == UNKNOWN:
        logging.getLogger("roundup_wsgi").warning(
            "cannot tell whether the database of %s is initialised: %s",
            home,
            detail,
        )


def web_url(host: str, port: int, path: str = "/") -> str:
    """Return the ``[tracker] web`` URL for a server bound to ``host:port``.

    Roundup compares the ``Origin``/``Referer`` of form posts with this URL,
    so it must be the address browsers use.  A wildcard bind address
    (``0.0.0.0``, ``::``, empty) maps to ``localhost``; IPv6 literals are
    bracketed.  ``path`` gets a trailing slash, as Roundup requires.

    >>> web_url("127.0.0.1", 8080)
    'http://127.0.0.1:8080/'
    """
    if host in ("", "0.0.0.0", "::"):
        host = "localhost"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    if not path.startswith("/"):
        path = "/" + path
    if not path.endswith("/"):
        path += "/"
    return f"http://{host}:{port}{path}"


def host_port(url: str) -> tuple[str, int]:
    """Return ``(host, port)`` of an http(s) URL: the host lower-cased, the
    port filled in from the scheme (80, or 443 for https) when absent.

    >>> host_port("https://Bugs.Example/tracker/")
    ('bugs.example', 443)
    """
    parts = urlsplit(url)
    default = 443 if parts.scheme == "https" else 80
    return (parts.hostname or "").lower(), parts.port or default


def same_origin(url_a: str, url_b: str) -> bool:
    """True if two URLs have the same host and port (scheme default ports
    filled in, host compared case-insensitively); paths are ignored."""
    return host_port(url_a) == host_port(url_b)


def tracker_web(home: str | os.PathLike[str]) -> str:
    """Return the tracker's ``[tracker] web`` setting (its base URL).

    :raises TrackerHomeError: if ``home`` is not a tracker home
        (:class:`TrackerNotReadyError` if ``web`` is unset).
    :raises roundup.configuration.ConfigurationError: if config.ini is broken
        (the message names the option).
    """
    from roundup.configuration import CoreConfig

    path = check_tracker_home(home)
    config = CoreConfig(path)
    if not config.options["TRACKER_WEB"].isset():
        raise unset_options_error(path, [config.options["TRACKER_WEB"]])
    return str(config["TRACKER_WEB"])


def set_tracker_web(home: str | os.PathLike[str], url: str) -> None:
    """Rewrite ``[tracker] web`` in the tracker's config.ini to ``url``.

    Roundup's ``CoreConfig.save`` writes the file, keeping every other
    setting.  ``url`` gets a trailing slash if it has none.
    """
    from roundup.configuration import CoreConfig

    path = check_tracker_home(home)
    config = CoreConfig(path)
    config["TRACKER_WEB"] = url if url.endswith("/") else url + "/"
    config.save(os.path.join(path, CONFIG_INI))


def open_tracker(home: str, optimize: bool = True) -> Any:
    """Open a tracker instance, as ``roundup.instance.open`` does but with
    classes of its own (``TemplatingUtils``, ``Client``, ``MailGW``; see
    :mod:`roundup_wsgi.isolation`), so trackers served by one process never
    see each other's util methods.

    :param home: the tracker home.
    :param optimize: Roundup's optimisation (templates compiled once).
    :raises MissingPackageError: the tracker needs a package that is not
        installed (e.g. jinja2 for a jinja2 tracker).
    """
    from .isolation import open_tracker as open_isolated

    try:
        return open_isolated(home, optimize)
    except ModuleNotFoundError as error:
        name_missing_package(error, f"the tracker {home}")
        raise


def close_database(db: Any, cursors: tuple[Any, ...] = ()) -> None:
    """Close a tracker database and its sessions and one-time-keys stores
    now (``db.close()``), closing their cursors first.

    sqlite closes a connection only once no cursor holds a statement
    (``sqlite3_close_v2``); Roundup's ``close`` leaves the last statement
    on ``db.cursor``, so the file (and, in WAL mode, its lock, which keeps
    the descriptors of every other connection closed meanwhile open) stays
    until the garbage collector frees the cursor.

    :param db: an open tracker database (``Tracker.open`` result).
    :param cursors: more cursors to close (e.g. one replaced earlier).
    :raises Exception: what the backend's ``close`` raises.
    """
    found = [*cursors, getattr(db, "cursor", None)]
    for name in ("Session", "Otk"):
        found.append(getattr(getattr(db, name, None), "cursor", None))
    for cursor in found:
        if cursor is not None and hasattr(cursor, "close"):
            try:
                cursor.close()
            except Exception:
                logger.debug("closing a cursor failed", exc_info=True)
    db.close()


def create_session_tables(tracker: Any) -> None:
    """Create a sqlite tracker's session and one-time-key tables now.

    Roundup's sqlite session store (``roundup.backends.sessions_sqlite``)
    checks whether its table exists and creates it on first use; two
    threads doing so at once (the first requests of a new tracker under
    waitress's threads) fail with ``table sessions already exists`` and
    Roundup answers 500.  Called once before the first request, the check
    then finds the tables.  Other backends and session databases (Redis,
    anydbm) are left alone; an error is left to the first request.

    :param tracker: an open tracker instance (``roundup.instance.Tracker``).
    """
    config = tracker.config
    if config.RDBMS_BACKEND != "sqlite" or config.SESSIONDB_BACKEND in (
        "redis",
        "anydbm",
    ):
        return
    try:
        db = tracker.open("admin")
    except Exception:  # e.g. an unwritable db directory: the request says so
        return
    try:
        db.getSessionManager()
        db.getOTKManager()
        db.commit()
    except Exception:
        pass
    finally:
        close_database(db)
