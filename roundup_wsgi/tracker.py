"""Creating and inspecting Roundup tracker homes, through Roundup's own API.

A *tracker home* is the directory ``roundup-admin install`` makes: a
``config.ini``, ``schema.py``, ``html/`` templates, ``detectors/`` and a
``db/`` directory.  Everything here calls Roundup's own functions
(:func:`roundup.init.install`, :meth:`roundup.instance.Tracker.init`,
:class:`roundup.configuration.CoreConfig`) so a tracker made by this module is
exactly what ``roundup-admin install`` + ``initialise`` would make.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "BACKENDS",
    "TrackerHomeError",
    "check_tracker_home",
    "close_database",
    "create_tracker",
    "host_port",
    "list_templates",
    "set_tracker_web",
    "tracker_web",
    "web_url",
]

#: Backends ``create_tracker`` offers.  ``sqlite`` and ``anydbm`` need no
#: server; ``postgresql`` needs the ``rdbms_*`` settings and psycopg2.
BACKENDS = ("sqlite", "anydbm", "postgresql")

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


def list_templates() -> dict[str, str]:
    """Return the tracker templates Roundup has installed, ``{name: directory}``.

    Uses ``roundup.admin.AdminTool.listTemplates`` (the list
    ``roundup-admin install`` offers): e.g. classic, minimal, responsive,
    devel, jinja2.
    """
    from roundup.admin import AdminTool

    found = AdminTool().listTemplates()
    return {name: info["path"] for name, info in sorted(found.items())}


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

    :raises TrackerHomeError: if ``home`` is not a tracker home.
    :raises roundup.configuration.ConfigurationError: if config.ini is broken
        (the message names the option).
    """
    from roundup.configuration import CoreConfig

    config = CoreConfig(check_tracker_home(home))
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


#: Optional packages a tracker may need, by module name: the pip command
#: that installs each (the extras are roundup-wsgi's).
OPTIONAL_PACKAGES = {
    "jinja2": "pip install 'roundup-wsgi[jinja2]'",
    "greenlet": "pip install 'roundup-wsgi[stream]'",
    "brotli": "pip install 'roundup-wsgi[compression]'",
    "zstd": "pip install 'roundup-wsgi[compression]'",
    "psycopg2": "pip install 'roundup-wsgi[postgresql]'",
}


class MissingPackageError(ModuleNotFoundError):
    """A package the tracker needs is not installed; the message names it
    and the pip command that installs it (:data:`OPTIONAL_PACKAGES`)."""


def name_missing_package(error: ModuleNotFoundError, needed_by: str) -> None:
    """Raise :class:`MissingPackageError` for ``error`` if it is a package
    of :data:`OPTIONAL_PACKAGES`; return otherwise.

    :param needed_by: what needs it, e.g. ``"the jinja2 template"``.
    :raises MissingPackageError: the package and the fix, in one line.
    """
    module = (error.name or "").split(".")[0]
    fix = OPTIONAL_PACKAGES.get(module)
    if fix is not None:
        raise MissingPackageError(
            f"{needed_by} needs the {module} package, which is not installed: {fix}",
            name=module,
        ) from error


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


def create_tracker(
    home: str | os.PathLike[str],
    *,
    admin_password: str,
    template: str = "classic",
    backend: str = "sqlite",
    web: str = "http://127.0.0.1:8080/",
    settings: Mapping[str, str | int] | None = None,
) -> str:
    """Install and initialise a new tracker at ``home``; return its absolute path.

    The equivalent of ``roundup-admin install`` then ``initialise``:
    :func:`roundup.init.install` copies the template, applies the template's
    ``config_ini.ini`` and ``settings``; :meth:`roundup.instance.Tracker.init`
    creates the database and the ``admin`` user.

    Outgoing mail is written to ``<home>/mail-debug.log`` (Roundup's
    ``[mail] debug``) so no SMTP server is needed; change ``[mail]`` in
    config.ini to send real mail.

    :param home: directory to create; it must not exist or be empty.
        Missing parent directories are created.
    :param admin_password: password of the ``admin`` user.
    :param template: a name from :func:`list_templates`.
    :param backend: one of :data:`BACKENDS`.
    :param web: the ``[tracker] web`` URL (see :func:`web_url`).
    :param settings: further config.ini options by Roundup's option name,
        e.g. ``{"rdbms_host": "db.example", "rdbms_name": "bugs"}``.
    :raises ValueError: unknown template or backend (the message lists the
        known ones).
    :raises FileExistsError: ``home`` exists and is not empty.
    :raises MissingPackageError: the template or backend needs a package that
        is not installed (jinja2, psycopg2); the message gives the pip command.
    :raises Exception: whatever Roundup raises initialising the database
        (e.g. psycopg2's ``OperationalError`` when PostgreSQL is unreachable);
        the half-made ``home`` is removed first, so nothing is left behind.
    """
    from roundup import init, instance, password
    from roundup.configuration import UserConfig

    path = os.path.abspath(os.fspath(home))
    templates = list_templates()
    if template not in templates:
        raise ValueError(
            f"unknown tracker template {template!r}: choose one of "
            + ", ".join(templates)
        )
    if backend not in BACKENDS:
        raise ValueError(
            f"unknown backend {backend!r}: choose one of " + ", ".join(BACKENDS)
        )
    if os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)):
        raise FileExistsError(
            f"cannot create a tracker in {path}: it exists and is not an empty "
            "directory; choose a new path or remove it"
        )

    template_dir = templates[template]
    values: dict[str, str | int] = {}
    # The template's own overrides first (e.g. jinja2's template_engine),
    # as 'roundup-admin install' applies them.
    template_config = UserConfig(os.path.join(template_dir, "config_ini.ini"))
    for key in template_config.keys():  # noqa: SIM118 - UserConfig has no __iter__
        if key != "HOME":
            values[key] = template_config[key]
    values.update(
        {
            "rdbms_backend": backend,
            "tracker_web": web if web.endswith("/") else web + "/",
            "mail_domain": "localhost",
            "mail_host": "localhost",
            "mail_debug": os.path.join(path, "mail-debug.log"),
        }
    )
    if settings:
        values.update(settings)

    created = not os.path.exists(path)
    try:
        os.makedirs(path, exist_ok=True)
        init.install(path, template_dir, settings=values)
        try:
            tracker = instance.open(path)
            tracker.init(password.Password(admin_password, config=tracker.config))
        except ModuleNotFoundError as error:
            name_missing_package(error, f"the {template} template with {backend}")
            raise
    except BaseException:
        if created:
            shutil.rmtree(path, ignore_errors=True)
        else:
            for entry in os.listdir(path):
                target = os.path.join(path, entry)
                if os.path.isdir(target) and not os.path.islink(target):
                    shutil.rmtree(target, ignore_errors=True)
                else:
                    os.unlink(target)
        raise
    return path
