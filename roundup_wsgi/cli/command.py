"""The ``roundup-wsgi`` command: create a tracker, or serve one with waitress.

``roundup-wsgi serve [TRACKER_HOME]`` serves a tracker with waitress; without
a home it serves (and on first run creates) the demo tracker in
``trackers/demo``.  ``roundup-wsgi init TRACKER_HOME`` creates a tracker
without serving it.  ``serve NAME=HOME NAME=HOME`` serves several trackers,
each under ``/NAME/``; ``wsgi-script`` prints a mod_wsgi script and
``check`` diagnoses a tracker before it is served (exit status 1 when a
check fails).  Expected failures (bad tracker home, broken config.ini,
port in use, database unreachable) print one line,
``roundup-wsgi: error: ...``, and exit with status 2.

The parser is in :mod:`.arguments`, ``serve`` in :mod:`.serve`; this module
holds :func:`main` and the smaller subcommands.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit, urlunsplit

from ..tracker import (
    MissingPackageError,
    check_tracker_home,
    create_tracker,
    host_port,
    same_origin,
    tracker_web,
    web_url,
)
from .argtypes import DEFAULT_WEB
from .arguments import build_parser, split_targets
from .demo import ADMIN_USERNAME, generate_password
from .output import EXIT_ERROR, PROG, CliError, one_line

__all__ = ["PROG", "CliError", "build_parser", "main"]

#: ``init`` options that become Roundup's ``rdbms_*`` settings (PostgreSQL).
DB_OPTIONS = {
    "db_host": "rdbms_host",
    "db_port": "rdbms_port",
    "db_name": "rdbms_name",
    "db_user": "rdbms_user",
    "db_password": "rdbms_password",
}

#: Appended to errors creating a PostgreSQL tracker.
POSTGRESQL_HINT = (
    "the postgresql backend needs psycopg2 installed (pip install psycopg2) and "
    "a reachable server: check --db-host, --db-port, --db-name, --db-user and "
    "--db-password"
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``roundup-wsgi`` command line.

    :param argv: the arguments after the program name; ``sys.argv[1:]`` if
        None.
    :returns: the exit status: 0 on success (and after Ctrl-C while
        serving), 2 for usage errors and expected failures, 1 when
        ``check`` finds a failure.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    try:
        return _handler(args.command)(args)
    except CliError as exc:
        print(f"{PROG}: error: {one_line(exc)}", file=sys.stderr, flush=True)
        return EXIT_ERROR


def _handler(command: str) -> Callable[[argparse.Namespace], int]:
    if command == "serve":
        from .serve import run_serve

        return run_serve
    handlers: dict[str, Callable[[argparse.Namespace], int]] = {
        "init": run_init,
        "wsgi-script": run_wsgi_script,
        "check": run_check,
    }
    return handlers[command]


def run_init(args: argparse.Namespace) -> int:
    """Handle ``roundup-wsgi init``: create and initialise a tracker.

    :param args: the parsed arguments of ``init``.
    :returns: 0 once the tracker is created.
    :raises CliError: ``--db-*`` without PostgreSQL, existing non-empty
        directory, or any failure creating the database.
    """
    settings = _database_settings(args)
    if args.database is not None:
        settings.update(_database_directory(args.database))
    password = args.admin_password or generate_password()
    if args.admin_password_file is not None:
        password = _read_secret(args.admin_password_file, "--admin-password-file")
    try:
        home = create_tracker(
            args.tracker_home,
            admin_password=password,
            template=args.template,
            backend=args.backend,
            web=args.web,
            settings=settings,
        )
    except (FileExistsError, MissingPackageError) as exc:  # name the fix
        raise CliError(str(exc)) from exc
    except Exception as exc:  # e.g. PostgreSQL unreachable, psycopg2 missing
        message = f"cannot create a tracker at {os.path.abspath(args.tracker_home)}"
        hint = f"; {POSTGRESQL_HINT}" if args.backend == "postgresql" else ""
        raise CliError(f"{message}: {exc}{hint}") from exc
    print(f"Created a Roundup tracker at {home}")
    print(f"  template {args.template}, backend {args.backend}")
    print(f"  web URL: {tracker_web(home)}")
    if args.admin_password_file is not None:
        print(f"  log in as {ADMIN_USERNAME} (password in {args.admin_password_file})")
    else:
        print(f"  log in as {ADMIN_USERNAME} / {password}")
    if not args.admin_password and args.admin_password_file is None:
        print("  (a generated password: note it, it is not shown again)")
    print(f"Next, serve it with: {_serve_command(home, args.web)}", flush=True)
    return 0


def _read_secret(path: str, flag: str) -> str:
    """The first line of the secret file *path*, trailing whitespace removed
    (as Roundup reads its ``file://`` options).

    :raises CliError: the file cannot be read, or its first line is empty.
    """
    try:
        with open(path, encoding="utf-8") as file:
            secret = file.readline().rstrip()
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(
            f"{flag} {path}: cannot read it ({exc}); give a readable file"
        ) from exc
    if not secret:
        raise CliError(
            f"{flag} {path}: its first line is empty; write the password there"
        )
    return secret


def _database_directory(path: str) -> dict[str, str | int]:
    """Roundup's settings for ``init --database DIR``: ``[main] database``
    and the ``[mail] debug`` file beside it (the tracker home may be mounted
    read-only).

    :raises CliError: *DIR* exists and is not an empty directory (it may
        hold another tracker's database).
    """
    directory = os.path.abspath(path)
    if os.path.exists(directory) and (
        not os.path.isdir(directory) or os.listdir(directory)
    ):
        raise CliError(
            f"--database {directory}: it exists and is not an empty directory "
            "(another tracker's data?); choose an empty one"
        )
    return {
        "database": directory,
        "mail_debug": os.path.join(directory, "mail-debug.log"),
    }


def _database_settings(args: argparse.Namespace) -> dict[str, str | int]:
    """Map the given ``--db-*`` options to Roundup's ``rdbms_*`` settings.

    :raises CliError: a ``--db-*`` option with a backend other than
        postgresql.
    """
    given = [option for option in DB_OPTIONS if getattr(args, option) is not None]
    if given and args.backend != "postgresql":
        flags = ", ".join("--" + option.replace("_", "-") for option in given)
        raise CliError(
            f"{flags}: only valid with --backend postgresql (the {args.backend} "
            "backend keeps its database in the tracker home); add "
            "--backend postgresql or leave them out"
        )
    return {DB_OPTIONS[option]: getattr(args, option) for option in given}


def _serve_command(home: str, web: str) -> str:
    """The ``roundup-wsgi serve`` command that serves the tracker where its
    ``web`` says: at ``/NAME/`` (``serve NAME=HOME``) when the path ends in
    one segment, on the host and port of a ``web`` on this machine, else
    with ``--web`` for the base URL (a reverse proxy's)."""
    parts = urlsplit(web)
    base, _, name = parts.path.rstrip("/").rpartition("/")
    target = shlex.quote(home)
    if name and _MOUNT_NAME.fullmatch(name):
        target = f"{name}={target}"
    else:
        base = parts.path.rstrip("/")
    base_url = urlunsplit((parts.scheme, parts.netloc, base + "/", "", ""))
    command = f"{PROG} serve {target}"
    local = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if local and base_url == web_url(str(parts.hostname), host_port(web)[1]):
        if not same_origin(web, DEFAULT_WEB):
            command += f" --host {parts.hostname} --port {host_port(web)[1]}"
    elif base_url != DEFAULT_WEB:
        command += f" --web {shlex.quote(base_url)}"
    return command


#: A mount name of ``serve NAME=HOME``: one path segment.
_MOUNT_NAME = re.compile(r"[A-Za-z0-9._~-]+")


def run_wsgi_script(args: argparse.Namespace) -> int:
    """Handle ``roundup-wsgi wsgi-script``: print the mod_wsgi script.

    :returns: 0.
    :raises CliError: a path that is not a tracker home, or several homes
        without names.
    """
    from .wsgi_script import wsgi_script

    home, trackers = split_targets(args.tracker_home, "wsgi-script")
    try:
        if trackers:
            target: str | dict[str, str] = {
                name: check_tracker_home(home) for name, home in trackers.items()
            }
        else:
            target = check_tracker_home(str(home))
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    print(wsgi_script(target), end="", flush=True)
    return 0


def run_check(args: argparse.Namespace) -> int:
    """Handle ``roundup-wsgi check``: print each finding (and its fix);
    ``--cluster`` adds the checks of a tracker served by several hosts.

    :returns: 0 when every check passed, warned or was skipped, 1 when one
        failed.
    """
    from .check import run_checks
    from .findings import report

    return report(
        run_checks(
            args.tracker_home, url=args.url, user=args.user, cluster=args.cluster
        )
    )
