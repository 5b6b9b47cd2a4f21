"""Making tracker homes: ``roundup-admin install`` + ``initialise`` through
Roundup's own API, and naming the optional packages a tracker needs.

:func:`create_tracker` calls :func:`roundup.init.install` and
:meth:`roundup.instance.Tracker.init`, so a tracker made here is exactly
what ``roundup-admin install`` + ``initialise`` would make.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping

__all__ = [
    "BACKENDS",
    "OPTIONAL_PACKAGES",
    "MissingPackageError",
    "create_tracker",
    "list_templates",
    "name_missing_package",
]

#: Backends ``create_tracker`` offers.  ``sqlite`` and ``anydbm`` need no
#: server; ``postgresql`` needs the ``rdbms_*`` settings and psycopg2.
BACKENDS = ("sqlite", "anydbm", "postgresql")

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


def list_templates() -> dict[str, str]:
    """Return the tracker templates Roundup has installed, ``{name: directory}``.

    Uses ``roundup.admin.AdminTool.listTemplates`` (the list
    ``roundup-admin install`` offers): e.g. classic, minimal, responsive,
    devel, jinja2.
    """
    from roundup.admin import AdminTool

    found = AdminTool().listTemplates()
    return {name: info["path"] for name, info in sorted(found.items())}


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

    ``roundup-admin install`` then ``initialise``: :func:`roundup.init.install`
    copies the template and applies its ``config_ini.ini`` and ``settings``;
    :meth:`roundup.instance.Tracker.init` creates the database and the
    ``admin`` user.  Outgoing mail goes to ``<home>/mail-debug.log``
    (Roundup's ``[mail] debug``); change ``[mail]`` to send real mail.

    :param home: directory to create (parents too); must not exist or be empty.
    :param admin_password: password of the ``admin`` user.
    :param template: a name from :func:`list_templates`.
    :param backend: one of :data:`BACKENDS`.
    :param web: the ``[tracker] web`` URL (see
        :func:`roundup_wsgi.tracker.web_url`).
    :param settings: further config.ini options by Roundup's option name,
        e.g. ``{"rdbms_host": "db.example", "rdbms_name": "bugs"}``.
    :raises ValueError: unknown template or backend (the message lists the
        known ones).
    :raises FileExistsError: ``home`` exists and is not empty.
    :raises MissingPackageError: the template or backend needs a package that
        is not installed (jinja2, psycopg2); the message gives the pip command.
    :raises Exception: whatever Roundup raises initialising the database
        (e.g. psycopg2's ``OperationalError``); the half-made ``home`` is
        removed first.
    """
    from roundup import init, instance, password

    path = os.path.abspath(os.fspath(home))
    template_dir = _template_dir(path, template, backend)
    values = _install_settings(path, template_dir, backend, web, settings)
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
        _remove_half_made(path, created)
        raise
    return path


def _template_dir(path: str, template: str, backend: str) -> str:
    """The directory of ``template``, once the arguments are checked.

    :raises ValueError: unknown template or backend.
    :raises FileExistsError: ``path`` exists and is not an empty directory.
    """
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
    return templates[template]


def _install_settings(
    path: str,
    template_dir: str,
    backend: str,
    web: str,
    settings: Mapping[str, str | int] | None,
) -> dict[str, str | int]:
    """The config.ini settings ``init.install`` applies, by option name:
    the template's ``config_ini.ini`` first (as ``roundup-admin install``
    applies it, e.g. jinja2's ``template_engine``), then ours, then
    ``settings``."""
    from roundup.configuration import UserConfig

    values: dict[str, str | int] = {}
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
    return values


def _remove_half_made(path: str, created: bool) -> None:
    """Remove what a failed :func:`create_tracker` left in ``path``: the
    directory if it made it, else its contents."""
    if created:
        shutil.rmtree(path, ignore_errors=True)
        return
    for entry in os.listdir(path):
        target = os.path.join(path, entry)
        if os.path.isdir(target) and not os.path.islink(target):
            shutil.rmtree(target, ignore_errors=True)
        else:
            os.unlink(target)
