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
    "TrackerNotReadyError",
    "check_tracker_home",
    "check_tracker_ready",
    "close_database",
    "create_tracker",
    "database_state",
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


#: :func:`database_state` results.
INITIALISED, NOT_INITIALISED, UNKNOWN = "initialised", "not initialised", "unknown"


def database_state(config: Any) -> tuple[str, str]:
    """Whether the tracker's database was initialised, found without
    opening it through Roundup (whose backends create a missing database,
    or a missing schema, on open).

    ``roundup-admin initialise`` creates the database and runs
    ``initial_data.py``, which makes the ``anonymous`` user every page
    needs.  So: sqlite -- the file ``db`` exists and, opened read-only, has
    an active ``anonymous`` user; postgresql -- the database exists (or the
    server answers without it) and has that user; anydbm -- Roundup's own
    ``db_exists`` (the ``nodes.user`` file).  Other backends: unknown.

    :param config: the tracker's ``roundup.configuration.CoreConfig``.
    :returns: ``(state, detail)``: ``INITIALISED``,
        ``NOT_INITIALISED`` (detail: what is missing) or ``UNKNOWN``
        (detail: why it cannot be told, e.g. the database server does not
        answer).
    """
    backend = str(config["RDBMS_BACKEND"])
    if backend == "sqlite":
        return _sqlite_state(os.path.join(str(config["DATABASE"]), "db"))
    if backend == "anydbm":
        from roundup.backends import back_anydbm

        if back_anydbm.db_exists(config):
            return INITIALISED, ""
        return NOT_INITIALISED, f"no database in {config['DATABASE']}"
    if backend == "postgresql":
        return _postgresql_state(config)
    return UNKNOWN, f"the {backend} backend is not checked"


#: The query telling an initialised database (Roundup's table of users).
_ANONYMOUS = "SELECT 1 FROM _user WHERE _username = 'anonymous' AND __retired__ = 0"


def _sqlite_state(path: str) -> tuple[str, str]:
    import sqlite3

    if not os.path.isfile(path):
        return NOT_INITIALISED, f"the database {path} does not exist"
    try:
        # mode=ro: never creates or changes the file (sqlite URI filenames).
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error as exc:
        return UNKNOWN, f"the database {path} cannot be opened ({exc})"
    try:
        tables = {
            row[0]
            for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
            )
        }
        if "_user" not in tables:
            return NOT_INITIALISED, f"the database {path} has no schema"
        if connection.execute(_ANONYMOUS).fetchone() is None:
            return NOT_INITIALISED, f"the database {path} has no anonymous user"
    except sqlite3.Error as exc:  # e.g. locked for longer than the timeout
        return UNKNOWN, f"the database {path} cannot be read ({exc})"
    finally:
        connection.close()
    return INITIALISED, ""


def _postgresql_state(config: Any) -> tuple[str, str]:
    try:
        from roundup.backends import back_postgresql as pg
    except ImportError as exc:
        return UNKNOWN, f"psycopg2 is not installed ({exc})"
    psycopg2: Any = pg.psycopg2
    params = pg.connection_dict(config, "database")
    db_name, schema_name = pg.get_database_schema_names(config)
    if schema_name:
        params["database"] = db_name
    try:
        connection = psycopg2.connect(**params)
    except psycopg2.OperationalError as exc:
        # Missing, or the server does not answer: ask its maintenance
        # database, as Roundup's db_command does.
        try:
            psycopg2.connect(**{**params, "database": "postgres"}).close()
        except psycopg2.Error:
            return UNKNOWN, f"the database server does not answer ({_line(exc)})"
        return NOT_INITIALISED, f"the PostgreSQL database {db_name} does not exist"
    try:
        cursor = connection.cursor()
        if schema_name:
            cursor.execute("SET search_path TO %s", (schema_name,))
        try:
            cursor.execute(_ANONYMOUS)
        except psycopg2.ProgrammingError as exc:
            if exc.pgcode != UNDEFINED_TABLE:
                raise
            where = f"{db_name}.{schema_name}" if schema_name else db_name
            return NOT_INITIALISED, f"the PostgreSQL database {where} has no schema"
        if cursor.fetchone() is None:
            return NOT_INITIALISED, (
                f"the PostgreSQL database {db_name} has no anonymous user"
            )
    except psycopg2.Error as exc:
        return UNKNOWN, f"the database cannot be read ({_line(exc)})"
    finally:
        connection.close()
    return INITIALISED, ""


#: PostgreSQL's SQLSTATE for a missing table (Appendix A, "Error Codes").
UNDEFINED_TABLE = "42P01"


def _line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def check_tracker_ready(home: str, config: Any = None) -> None:
    """Refuse a tracker that cannot serve a page (called once at start).

    Checks, without creating anything: no required option is unset
    (``unset_options()``), and the database is initialised
    (:func:`database_state`; a database that cannot be reached now is
    logged as a warning and not refused, so a server may start before its
    database server).

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


#: Optional packages a tracker may need, by module name: the pip command
#: that installs each (the extras are roundup-wsgi's).
OPTIONAL_PACKAGES = {
    "jinja2": "pip install 'roundup-wsgi[jinja2]'",
    "brotli": "pip install 'roundup-wsgi[compression]'",
    "zstd": "pip install 'roundup-wsgi[compression]'",
    "psycopg2": "pip install 'roundup-wsgi[postgresql]'",
}


class MissingPackageError(ModuleNotFoundError):
    """A package the tracker needs is not installed; the message names it
    and the pip command that installs it (:data:`OPTIONAL_PACKAGES`)."""


def name_missing_package(error: ModuleNotFoundError, needed_by: str) -> None:
    """Raise ``MissingPackageError`` for ``error`` if it is a package
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
