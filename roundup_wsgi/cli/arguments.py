"""The ``roundup-wsgi`` command's arguments: the parser and its value types.

:func:`build_parser` makes the parser of every subcommand; each sets
``command`` to its name, which :func:`~.command.main` looks up.  The
application options of ``serve`` (``--write-mode``, ``--debug``, ...) are
made from the options table, :data:`roundup_wsgi.options.OPTIONS`, so an
option added there gets its flag here without edits.
"""

from __future__ import annotations

import argparse
import enum
import re
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn
from urllib.parse import urlsplit

from ..options import OPTIONS, ConfigError, Option, convert, parse_trackers
from ..tracker import BACKENDS, list_templates, web_url
from .output import PROG, CliError

__all__ = [
    "DEFAULT_GRACEFUL_TIMEOUT",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "DEFAULT_THREADS",
    "DEFAULT_WEB",
    "LOG_LEVELS",
    "build_parser",
    "split_targets",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_THREADS = 4
DEFAULT_WEB = web_url(DEFAULT_HOST, DEFAULT_PORT)
#: Seconds ``serve`` lets requests in progress finish on Ctrl-C/SIGTERM.
DEFAULT_GRACEFUL_TIMEOUT = 30.0
#: ``serve --log-level`` choices (the :mod:`logging` levels).
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")

#: ``NAME=`` at the start of a positional argument: a tracker to mount at /NAME/.
_NAMED_HOME = re.compile(r"^[A-Za-z0-9._~-]+=")


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser: the ``serve``, ``init``, ``wsgi-script``
    and ``check`` subcommands and ``--version``."""
    import roundup

    from .. import __version__
    from .demo import DEMO_HOME

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
    options = serve.add_argument_group(
        "application options (also ROUNDUP_WSGI_<NAME> for roundup_wsgi.app)"
    )
    for option in OPTIONS:
        if option.cli_flag:
            _add_option_flag(options, option)

    templates = list(list_templates())
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
        choices=templates,
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
    return parser


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


def _add_option_flag(group: Any, option: Option) -> None:
    """Add the flag of one table option: ``--name``/``--no-name`` for a
    boolean, a repeatable flag for a list, ``choices`` for a ``Literal`` or
    an :class:`enum.Enum`,
    otherwise a value converted by :func:`~roundup_wsgi.options.convert`."""
    kwargs: dict[str, Any] = {"dest": option.name, "default": option.default}
    help_text = option.help
    origin = typing.get_origin(option.hint)
    if option.hint is bool:
        kwargs["action"] = argparse.BooleanOptionalAction
    elif _is_list(option.hint):
        kwargs.update(action="append", metavar="ADDR")
        help_text += " (repeatable)"
    elif origin is typing.Literal:
        kwargs["choices"] = typing.get_args(option.hint)
    elif isinstance(option.hint, type) and issubclass(option.hint, enum.Enum):
        kwargs.update(type=_converter(option), choices=tuple(option.hint))
    else:
        kwargs.update(type=_converter(option), metavar=option.name.upper())
    if option.default is not None and option.hint is not bool:
        help_text += " (default: %(default)s)"
    group.add_argument(option.cli_flag, help=help_text, **kwargs)


def _is_list(hint: Any) -> bool:
    return any(
        typing.get_origin(part) is list or part is list
        for part in (hint, *typing.get_args(hint))
    )


def _converter(option: Option) -> Callable[[str], Any]:
    def convert_text(text: str) -> Any:
        try:
            return convert(text, option.hint)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None

    convert_text.__name__ = option.name  # argparse names it in errors
    return convert_text


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


def port_number(text: str) -> int:
    """argparse type: a TCP port number, 1-65535."""
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1-65535)")
    return port


def listen_port(text: str) -> int:
    """argparse type: a TCP port to listen on, 0-65535 (0: any free one)."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a port number (1-65535, or 0 for any free port)"
        )
    return port


def seconds(text: str) -> float:
    """argparse type: a duration in seconds, >= 0."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds >= 0")
    return value


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return value


def web_url_argument(text: str) -> str:
    """argparse type: an absolute http(s) URL, given a trailing slash."""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an absolute http(s) URL like {DEFAULT_WEB}"
        )
    return text if text.endswith("/") else text + "/"


def public_url(text: str) -> str:
    """argparse type: the public URL of ``serve --web``: http or https, a
    host, no user, query or fragment, a path ending in ``/`` (Roundup's rule
    for ``[tracker] web``); an empty path becomes ``/``.

    :raises argparse.ArgumentTypeError: the URL and what is wrong with it.
    """
    parts = urlsplit(text)
    try:
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        problem = "its port is not a number from 0 to 65535"
    else:
        problem = ""
    if parts.scheme not in ("http", "https") or not parts.hostname:
        problem = f"it is not an absolute http(s) URL like {DEFAULT_WEB}"
    elif parts.username is not None or parts.query or parts.fragment:
        problem = "give it without user name, query or fragment"
    elif parts.path and not parts.path.endswith("/"):
        problem = f"its path must end in '/', e.g. {text}/"
    if problem:
        raise argparse.ArgumentTypeError(f"{text!r}: {problem}")
    return text if parts.path else text + "/"
