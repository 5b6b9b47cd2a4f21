"""The ``roundup-wsgi`` command's arguments: the parser of each subcommand.

:func:`build_parser` makes the parser of every subcommand; each sets
``command`` to its name, which :func:`~.command.main` looks up.  The value
types and defaults are in :mod:`.values`; the application options of
``serve`` (``--write-mode``, ``--debug``, ...) are made from the options
table by :mod:`.option_flags`.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from ..options import ConfigError, parse_trackers
from ..tracker import BACKENDS, list_templates
from .argtypes import (
    DEFAULT_GRACEFUL_TIMEOUT,
    DEFAULT_HOST,
    DEFAULT_PORT,
    DEFAULT_THREADS,
    DEFAULT_WEB,
    LOG_LEVELS,
    listen_port,
    port_number,
    positive_int,
    public_url,
    seconds,
    web_url_argument,
)
from .option_flags import add_option_flags
from .output import PROG, CliError

__all__ = ["OneLineErrorParser", "build_parser", "split_targets"]

#: ``NAME=`` at the start of a positional argument: a tracker to mount at /NAME/.
_NAMED_HOME = re.compile(r"^[A-Za-z0-9._~-]+=")


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser: the ``serve``, ``init``, ``wsgi-script``
    and ``check`` subcommands and ``--version``."""
    import roundup

    from .. import __version__

    parser = OneLineErrorParser(
        prog=PROG,
        description="Serve the Roundup issue tracker on any WSGI server.",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"{PROG} {__version__} (Roundup {roundup.__version__})",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    parser.subcommands = commands.choices
    _add_serve(commands)
    _add_init(commands)
    _add_wsgi_script(commands)
    _add_check(commands)
    return parser


def _add_serve(commands: argparse._SubParsersAction[Any]) -> None:
    """``serve [TRACKER_HOME | NAME=TRACKER_HOME ...]``: where it listens,
    how it runs, then the application options."""
    from .demo import DEMO_HOME

    serve = commands.add_parser(
        "serve",
        help="serve a tracker with waitress",
        description=(
            "Serve a tracker with waitress.  Without TRACKER_HOME, serve the "
            f"demo tracker in {DEMO_HOME}, creating it on first run."
        ),
    )
    serve.add_argument(
        "tracker_home",
        nargs="*",
        metavar="TRACKER_HOME | NAME=TRACKER_HOME",
        help=f"the tracker home directory (default: the demo, {DEMO_HOME}); "
        "or several NAME=TRACKER_HOME, each served under /NAME/",
    )
    _add_serve_listening(serve)
    _add_serve_running(serve)
    add_option_flags(serve)


def _add_serve_listening(serve: argparse.ArgumentParser) -> None:
    """``serve --host --port --web --unix-socket --threads``."""
    serve.add_argument(
        "--host", default=DEFAULT_HOST, help="address to bind (default: %(default)s)"
    )
    serve.add_argument(
        "--port",
        type=listen_port,
        default=DEFAULT_PORT,
        help="TCP port; 0 picks a free one and prints it (default: %(default)s)",
    )
    serve.add_argument(
        "--web",
        metavar="URL",
        type=public_url,
        help="the public URL browsers use, e.g. a reverse proxy's "
        "https://bugs.example/ (default: http://HOST:PORT/); the demo's "
        "[tracker] web is set to it, other trackers' are checked against it",
    )
    serve.add_argument(
        "--unix-socket",
        metavar="PATH",
        help="listen on this Unix socket instead of --host/--port (for a "
        "reverse proxy on the same machine)",
    )
    serve.add_argument(
        "--threads",
        type=positive_int,
        default=DEFAULT_THREADS,
        help="waitress worker threads (default: %(default)s)",
    )


def _add_serve_running(serve: argparse.ArgumentParser) -> None:
    """``serve --admin-password --access-log --log-level --graceful-timeout``."""
    serve.add_argument(
        "--admin-password",
        metavar="PW",
        help="admin password when the demo is created (default: generated)",
    )
    serve.add_argument(
        "--access-log",
        metavar="FILE|-|off",
        default="-",
        help="where the access log goes: a file (appended to), - for stderr, "
        "or off (default: %(default)s)",
    )
    serve.add_argument(
        "--log-level",
        type=str.lower,
        choices=LOG_LEVELS,
        default="warning",
        help="level of the other log messages, to stderr (default: %(default)s)",
    )
    serve.add_argument(
        "--graceful-timeout",
        type=seconds,
        default=DEFAULT_GRACEFUL_TIMEOUT,
        metavar="SECONDS",
        help="on Ctrl-C or SIGTERM, stop accepting and let requests in "
        "progress finish for up to this long (default: %(default)s); a "
        "second signal stops at once",
    )


def _add_init(commands: argparse._SubParsersAction[Any]) -> None:
    """``init TRACKER_HOME``: the tracker, its admin password, its database."""
    init = commands.add_parser(
        "init",
        help="create a tracker without serving it",
        description="Create and initialise a Roundup tracker.",
    )
    init.add_argument(
        "tracker_home",
        metavar="TRACKER_HOME",
        help="directory to create (it must not exist or be empty)",
    )
    init.add_argument(
        "--template",
        choices=list(list_templates()),
        default="classic",
        help="tracker template (default: %(default)s)",
    )
    init.add_argument(
        "--backend",
        choices=BACKENDS,
        default="sqlite",
        help="database backend (default: %(default)s)",
    )
    init.add_argument(
        "--web",
        metavar="URL",
        type=web_url_argument,
        default=DEFAULT_WEB,
        help="the [tracker] web URL browsers use (default: %(default)s)",
    )
    password = init.add_mutually_exclusive_group()
    password.add_argument(
        "--admin-password",
        metavar="PW",
        help="password of the admin user (default: generated)",
    )
    password.add_argument(
        "--admin-password-file",
        metavar="FILE",
        help="read the admin password from the first line of FILE (a secret "
        "file such as /run/secrets/admin_password; not printed)",
    )
    _add_init_database(init)


def _add_init_database(init: argparse.ArgumentParser) -> None:
    """``init --database`` and the ``--db-*`` settings of PostgreSQL."""
    init.add_argument(
        "--database",
        metavar="DIR",
        help="directory for the database and attachments ([main] database; "
        "default: db in the tracker home), e.g. a separate volume",
    )
    database = init.add_argument_group("PostgreSQL (only with --backend postgresql)")
    database.add_argument(
        "--db-host",
        metavar="H",
        help="database server host name or address ([rdbms] host; default: localhost)",
    )
    database.add_argument(
        "--db-port",
        metavar="P",
        type=port_number,
        help="database server TCP port ([rdbms] port; default: 5432)",
    )
    database.add_argument(
        "--db-name", metavar="N", help="database name ([rdbms] name; default: roundup)"
    )
    database.add_argument(
        "--db-user", metavar="U", help="database user ([rdbms] user; default: roundup)"
    )
    database.add_argument(
        "--db-password",
        metavar="P",
        help="that user's password ([rdbms] password; default: roundup)",
    )


def _add_wsgi_script(commands: argparse._SubParsersAction[Any]) -> None:
    """``wsgi-script TRACKER_HOME | NAME=TRACKER_HOME ...``."""
    script = commands.add_parser(
        "wsgi-script",
        help="print a mod_wsgi script (.wsgi file) for a tracker",
        description="Print a mod_wsgi script serving the tracker (or several "
        "trackers given as NAME=TRACKER_HOME, each under /NAME/); save it as "
        "the file WSGIScriptAlias names.",
    )
    script.add_argument(
        "tracker_home", nargs="+", metavar="TRACKER_HOME | NAME=TRACKER_HOME"
    )


def _add_check(commands: argparse._SubParsersAction[Any]) -> None:
    """``check TRACKER_HOME [--url URL] [--user USER] [--cluster]``."""
    check = commands.add_parser(
        "check",
        help="diagnose a tracker before serving it",
        description="Check that the tracker opens, its backend is reachable, "
        "the serving user can read it and write its db directory, and "
        "[tracker] web matches the URL it is served at.  Exit status 1 when a "
        "check fails.",
    )
    check.add_argument("tracker_home", metavar="TRACKER_HOME")
    check.add_argument(
        "--url",
        type=web_url_argument,
        help="the URL browsers use for the tracker, e.g. https://bugs.example/",
    )
    check.add_argument(
        "--user",
        help="the account the WSGI server runs as (default: the current user)",
    )
    check.add_argument(
        "--cluster",
        action="store_true",
        help="also check the settings that break several app hosts behind a "
        "load balancer (backend, indexer, session database, shared storage "
        "of db/files, database host); give --url with the balancer's URL",
    )


class OneLineErrorParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line,
    ``roundup-wsgi serve: error: <message> (see roundup-wsgi serve --help)``,
    exit status 2, like every other error of the command."""

    #: ``{name: parser}`` of the subcommands (set by :func:`build_parser`).
    subcommands: Mapping[str, argparse.ArgumentParser] | None = None

    def error(self, message: str) -> NoReturn:
        """Print the one-line error and exit with status 2."""
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def parse_args(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        namespace: argparse.Namespace | None = None,
    ) -> argparse.Namespace:
        """Parse as ``ArgumentParser.parse_args``, but an unknown argument
        after a subcommand is that subcommand's error (``roundup-wsgi serve:
        error: ... (see roundup-wsgi serve --help)``): argparse reports it
        with the top-level parser, whose help does not list it.

        :raises SystemExit: status 2 after a usage error.
        """
        parsed, extra = self.parse_known_args(args, namespace)
        if extra:
            command = getattr(parsed, "command", None)
            parser = (self.subcommands or {}).get(command or "", self)
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        return parsed


def split_targets(given: list[str], command: str) -> tuple[str | None, dict[str, str]]:
    """Split positional tracker arguments.

    :param given: the arguments, e.g. ``["bugs=/srv/bugs", "support=/srv/s"]``
        or ``["/srv/bugs"]`` or ``[]``.
    :param command: the subcommand, named in errors.
    :returns: ``(None, {name: home})`` for ``NAME=TRACKER_HOME`` arguments,
        else ``(home, {})`` with the single home (``None``: none given).
    :raises CliError: several homes without names, a mix, or a bad name.
    """
    named = [item for item in given if _NAMED_HOME.match(item)]
    if not named:
        if len(given) > 1:
            raise CliError(
                f"{command} takes one TRACKER_HOME, or NAME=TRACKER_HOME for each "
                f"of several trackers (e.g. bugs={given[0]} support={given[1]})"
            )
        return (given[0] if given else None), {}
    if len(named) != len(given):
        plain = next(item for item in given if item not in named)
        raise CliError(
            f"{plain}: give every tracker as NAME=TRACKER_HOME when serving "
            f"several (e.g. bugs={plain})"
        )
    try:
        return None, parse_trackers(named, command)
    except ConfigError as exc:
        raise CliError(str(exc)) from exc
