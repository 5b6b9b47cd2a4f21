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
"""

from __future__ import annotations

import argparse
import configparser
import logging
import os
import re
import shlex
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

from . import __version__
from .demo import (
    ADMIN_USERNAME,
    DEMO_HOME,
    DEMO_USERNAME,
    create_demo,
    demo_exists,
    generate_password,
    repoint_demo,
)
from .options import ConfigError, parse_trackers
from .tracker import (
    BACKENDS,
    check_tracker_home,
    create_tracker,
    host_port,
    list_templates,
    same_origin,
    tracker_web,
    web_url,
)

__all__ = ["PROG", "CliError", "build_parser", "main"]

PROG = "roundup-wsgi"
#: Exit status for expected errors (argparse uses 2 for usage errors too).
EXIT_ERROR = 2

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_THREADS = 4
DEFAULT_WEB = web_url(DEFAULT_HOST, DEFAULT_PORT)

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


class CliError(Exception):
    """An expected failure: :func:`main` prints its message on one line as
    ``roundup-wsgi: error: <message>`` and returns exit status 2."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``roundup-wsgi`` command line.

    :param argv: the arguments after the program name; ``sys.argv[1:]`` if
        None.
    :returns: the exit status: 0 on success (and after Ctrl-C while
        serving), 2 for usage errors and expected failures.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    try:
        status: int = args.run(args)
    except CliError as exc:
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr, flush=True)
        return EXIT_ERROR
    return status


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser: the ``serve`` and ``init`` subcommands
    and ``--version``; each subcommand sets ``run`` to its handler."""
    import roundup

    from .dispatcher import WRITE_MODES

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Serve the Roundup issue tracker on any WSGI server.",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"{PROG} {__version__} (Roundup {roundup.__version__})",
    )
    commands = parser.add_subparsers(dest="command", required=True)

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
        type=_port,
        default=DEFAULT_PORT,
        help="TCP port (default: %(default)s)",
    )
    serve.add_argument(
        "--threads",
        type=_positive_int,
        default=DEFAULT_THREADS,
        help="waitress worker threads (default: %(default)s)",
    )
    serve.add_argument(
        "--write-mode",
        choices=WRITE_MODES,
        default=WRITE_MODES[0],
        help="how response bodies reach the server (default: %(default)s)",
    )
    serve.add_argument(
        "--admin-password",
        metavar="PW",
        help="admin password when the demo is created (default: generated)",
    )
    serve.add_argument(
        "--debug",
        action="store_true",
        help="reload templates on change, show tracebacks in error pages",
    )
    serve.add_argument(
        "--trusted-proxy",
        metavar="ADDR",
        action="append",
        help="honour X-Forwarded-* headers from this proxy address or network "
        "(e.g. 127.0.0.1 or 10.0.0.0/8; repeatable)",
    )
    serve.set_defaults(run=run_serve)

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
        type=_web,
        default=DEFAULT_WEB,
        help="the [tracker] web URL browsers use (default: %(default)s)",
    )
    init.add_argument(
        "--admin-password",
        metavar="PW",
        help="password of the admin user (default: generated)",
    )
    database = init.add_argument_group("PostgreSQL (only with --backend postgresql)")
    database.add_argument("--db-host", metavar="H")
    database.add_argument("--db-port", metavar="P", type=_port)
    database.add_argument("--db-name", metavar="N")
    database.add_argument("--db-user", metavar="U")
    database.add_argument("--db-password", metavar="P")
    init.set_defaults(run=run_init)
    _add_deploy_commands(commands)
    return parser


def run_serve(args: argparse.Namespace) -> int:
    """Handle ``roundup-wsgi serve``: prepare the tracker, then serve it
    until Ctrl-C.

    :param args: the parsed arguments of ``serve``.
    :returns: 0 once the server stops.
    :raises CliError: bad tracker home, broken config.ini, port in use.
    """
    served = web_url(args.host, args.port)
    trackers = _serve_targets(args)
    # Bind first: a busy port fails before the tracker is created or changed.
    apps: list[Any] = []
    server = _create_server(
        lambda environ, start_response: apps[0](environ, start_response),
        args.host,
        args.port,
        args.threads,
    )
    try:
        if trackers:
            home, url, app = _prepare_mount(args, trackers, served)
        else:
            home, url, app = _prepare_app(args, served)
        app = _with_trusted_proxies(app, args.trusted_proxy)
    except BaseException:
        server.close()
        raise
    apps.append(app)
    print(
        f"Serving {home} at {url} (waitress, {_plural(args.threads, 'thread')}, "
        f"write mode {args.write_mode}); press Ctrl-C to stop",
        flush=True,
    )
    with _sigterm_as_ctrl_c():
        try:
            server.run()  # returns on Ctrl-C
        except KeyboardInterrupt:  # Ctrl-C before waitress's loop caught it
            pass
        finally:
            server.close()
    print("Stopped.", flush=True)
    return 0


def _prepare_app(args: argparse.Namespace, served: str) -> tuple[str, str, Any]:
    """Prepare the tracker ``serve`` serves; return ``(home, url to open,
    WSGI app)``.

    :raises CliError: bad tracker home, broken config.ini.
    """
    from roundup.configuration import ConfigurationError

    try:
        if args.tracker_home is None:
            home, url = _prepare_demo(served, args.admin_password)
        else:
            home, url = _check_user_tracker(args.tracker_home, served)
            if args.admin_password is not None:
                _note("--admin-password ignored: it only sets up the demo tracker")
        app = _make_app(home, debug=args.debug, write_mode=args.write_mode)
    except (ConfigurationError, configparser.Error) as exc:
        raise CliError(
            f"cannot read {_config_path(args.tracker_home or DEMO_HOME)}: {exc}; "
            "fix that setting or line in config.ini"
        ) from exc
    except ValueError as exc:  # TrackerHomeError, or refused by the dispatcher
        raise CliError(str(exc)) from exc
    return home, url, app


def run_init(args: argparse.Namespace) -> int:
    """Handle ``roundup-wsgi init``: create and initialise a tracker.

    :param args: the parsed arguments of ``init``.
    :returns: 0 once the tracker is created.
    :raises CliError: ``--db-*`` without PostgreSQL, existing non-empty
        directory, or any failure creating the database.
    """
    settings = _database_settings(args)
    password = args.admin_password or generate_password()
    try:
        home = create_tracker(
            args.tracker_home,
            admin_password=password,
            template=args.template,
            backend=args.backend,
            web=args.web,
            settings=settings,
        )
    except FileExistsError as exc:  # its message names the path and the fix
        raise CliError(str(exc)) from exc
    except Exception as exc:  # e.g. PostgreSQL unreachable, psycopg2 missing
        message = f"cannot create a tracker at {os.path.abspath(args.tracker_home)}"
        hint = f"; {POSTGRESQL_HINT}" if args.backend == "postgresql" else ""
        raise CliError(f"{message}: {exc}{hint}") from exc
    print(f"Created a Roundup tracker at {home}")
    print(f"  template {args.template}, backend {args.backend}")
    print(f"  web URL: {tracker_web(home)}")
    print(f"  log in as {ADMIN_USERNAME} / {password}")
    if not args.admin_password:
        print("  (a generated password: note it, it is not shown again)")
    print(f"Next, serve it with: {_serve_command(home, args.web)}", flush=True)
    return 0


def _prepare_demo(served: str, admin_password: str | None) -> tuple[str, str]:
    """Create the demo on first run, else point it at ``served``; return
    ``(home, url to open)``."""
    home = os.path.abspath(DEMO_HOME)
    if not demo_exists(home):
        credentials = create_demo(home, web=served, admin_password=admin_password)
        print(
            f"Demo tracker created at {credentials.home}; log in as "
            f"{ADMIN_USERNAME} / {credentials.admin_password} "
            f"(or {DEMO_USERNAME} / {credentials.demo_password})",
            flush=True,
        )
        return home, served
    if admin_password is not None:
        _note(
            f"--admin-password ignored: the demo tracker {home} already exists "
            "(delete that directory to create a new one)"
        )
    previous = repoint_demo(home, served)
    if previous is not None:
        print(
            f"Demo tracker {home}: [tracker] web changed from {previous} to {served}",
            flush=True,
        )
    return home, served


def _check_user_tracker(tracker_home: str, served: str) -> tuple[str, str]:
    """Check a user-given tracker home and warn if its ``[tracker] web`` is
    not where it is served; return ``(home, url to open)``."""
    home = check_tracker_home(tracker_home)
    web = tracker_web(home)
    if same_origin(web, served):
        return home, web
    host, port = host_port(web)
    _warn(
        f"{_config_path(home)} sets [tracker] web = {web} but the server "
        f"listens at {served}.  Roundup will reject form posts (its CSRF check "
        "compares the Origin/Referer header with [tracker] web) unless they "
        f"match: set 'web = {served}' in the [tracker] section of "
        f"{_config_path(home)}, or serve on that host and port "
        f"(--host {host} --port {port})."
    )
    return home, served


def _make_app(home: str, *, debug: bool, write_mode: str) -> Any:
    from .dispatcher import RequestDispatcher

    return RequestDispatcher(home, debug=debug, write_mode=write_mode)


def _create_server(app: Any, host: str, port: int, threads: int) -> Any:
    """Bind a waitress server; :raises CliError: if the address is unusable."""
    import waitress

    logging.basicConfig()  # waitress and Roundup log warnings to stderr
    try:
        return waitress.create_server(
            app, host=host, port=port, threads=threads, ident=PROG
        )
    except OSError as exc:
        raise CliError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; "
            "choose another port with --port (or stop what is using it)"
        ) from exc


@contextmanager
def _sigterm_as_ctrl_c() -> Iterator[None]:
    """Make SIGTERM (``kill``, service managers) stop the server like Ctrl-C
    does; a no-op outside the main thread, where signals cannot be set."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


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
    """The ``roundup-wsgi serve`` command matching ``web`` when it names
    this machine; just the home otherwise (e.g. behind a proxy)."""
    command = f"{PROG} serve {shlex.quote(home)}"
    parts = urlsplit(web)
    local = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if local and parts.port and not same_origin(web, DEFAULT_WEB):
        command += f" --host {parts.hostname} --port {parts.port}"
    return command


def _config_path(home: str) -> str:
    return os.path.join(os.path.abspath(home), "config.ini")


def _note(message: str) -> None:
    print(f"{PROG}: note: {message}", file=sys.stderr, flush=True)


def _warn(message: str) -> None:
    print(f"{PROG}: warning: {message}", file=sys.stderr, flush=True)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _one_line(exc: BaseException) -> str:
    """The exception's message with all whitespace runs (e.g. the newlines in
    database errors) collapsed to single spaces."""
    return " ".join(str(exc).split())


def _port(text: str) -> int:
    """argparse type: a TCP port number, 1-65535."""
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1-65535)")
    return port


def _positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return value


def _web(text: str) -> str:
    """argparse type: an absolute http(s) URL, given a trailing slash."""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an absolute http(s) URL like {DEFAULT_WEB}"
        )
    return text if text.endswith("/") else text + "/"


# -- several trackers, proxies, wsgi-script and check (deployment) -----------

#: ``NAME=`` at the start of a serve argument: a tracker to mount at /NAME/.
_NAMED_HOME = re.compile(r"^[A-Za-z0-9._~-]+=")


def _serve_targets(args: argparse.Namespace) -> dict[str, str]:
    """Split ``serve``'s positional arguments: ``{name: home}`` for
    ``NAME=TRACKER_HOME`` arguments (``args.tracker_home`` set to None), or
    ``{}`` with ``args.tracker_home`` the single home (or None: the demo).

    :raises CliError: several homes without names, or a bad name.
    """
    given: list[str] = list(args.tracker_home or [])
    named = [item for item in given if _NAMED_HOME.match(item)]
    if not named:
        if len(given) > 1:
            raise CliError(
                "serve takes one TRACKER_HOME, or NAME=TRACKER_HOME for each of "
                f"several trackers (e.g. bugs={given[0]} support={given[1]})"
            )
        args.tracker_home = given[0] if given else None
        return {}
    if len(named) != len(given):
        plain = next(item for item in given if item not in named)
        raise CliError(
            f"{plain}: give every tracker as NAME=TRACKER_HOME when serving "
            f"several (e.g. bugs={plain})"
        )
    try:
        trackers = parse_trackers(named, "serve")
    except ConfigError as exc:
        raise CliError(str(exc)) from exc
    args.tracker_home = None
    return trackers


def _prepare_mount(
    args: argparse.Namespace, trackers: dict[str, str], served: str
) -> tuple[str, str, Any]:
    """Check the trackers ``serve NAME=HOME ...`` mounts and warn where
    ``[tracker] web`` is not ``<served>NAME/``; return ``(description, url
    of the index, WSGI app)``.

    :raises CliError: bad tracker home, broken config.ini.
    """
    from roundup.configuration import ConfigurationError

    from .mount import TrackerMount

    if args.admin_password is not None:
        _note("--admin-password ignored: it only sets up the demo tracker")
    apps: dict[str, Any] = {}
    for name, given in trackers.items():
        try:
            home = check_tracker_home(given)
            web = tracker_web(home)
            expected = served + name + "/"
            if web.rstrip("/") != expected.rstrip("/"):
                _warn(
                    f"{_config_path(home)} sets [tracker] web = {web} but it is "
                    f"served at {expected}: Roundup rejects form posts and builds "
                    f"wrong links unless they match; set 'web = {expected}' in "
                    f"the [tracker] section of {_config_path(home)}."
                )
            apps[name] = _make_app(home, debug=args.debug, write_mode=args.write_mode)
        except (ConfigurationError, configparser.Error) as exc:
            raise CliError(
                f"cannot read {_config_path(given)}: {exc}; fix that setting "
                "or line in config.ini"
            ) from exc
        except ValueError as exc:  # TrackerHomeError, or refused by the dispatcher
            raise CliError(f"{name}={given}: {exc}") from exc
    description = ", ".join(f"{name}={trackers[name]}" for name in apps)
    return description, served, TrackerMount(apps)


def _with_trusted_proxies(app: Any, trusted: list[str] | None) -> Any:
    """Wrap ``app`` in :class:`~roundup_wsgi.proxy.TrustedProxyFix` when
    ``--trusted-proxy`` was given.

    :raises CliError: an address that is not an IP address or network.
    """
    if not trusted:
        return app
    from .proxy import TrustedProxyFix

    try:
        return TrustedProxyFix(app, trusted)
    except ValueError as exc:
        raise CliError(f"--trusted-proxy: {exc}") from exc


def _add_deploy_commands(commands: Any) -> None:
    """Add the ``wsgi-script`` and ``check`` subcommands."""
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
    script.set_defaults(run=run_wsgi_script)

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
        type=_web,
        help="the URL browsers use for the tracker, e.g. https://bugs.example/",
    )
    check.add_argument(
        "--user",
        help="the account the WSGI server runs as (default: the current user)",
    )
    check.set_defaults(run=run_check)


def run_wsgi_script(args: argparse.Namespace) -> int:
    """Handle ``roundup-wsgi wsgi-script``: print the mod_wsgi script.

    :returns: 0.
    :raises CliError: a path that is not a tracker home, or several homes
        without names.
    """
    from .deploy import wsgi_script

    trackers = _serve_targets(args)
    try:
        if trackers:
            target: str | dict[str, str] = {
                name: check_tracker_home(home) for name, home in trackers.items()
            }
        else:
            target = check_tracker_home(args.tracker_home)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    print(wsgi_script(target), end="", flush=True)
    return 0


def run_check(args: argparse.Namespace) -> int:
    """Handle ``roundup-wsgi check``: print each finding (and its fix).

    :returns: 0 when every check passed or was skipped, 1 when one failed.
    """
    from .check import run_checks

    findings = run_checks(args.tracker_home, url=args.url, user=args.user)
    labels = {True: "ok  ", False: "FAIL", None: "skip"}
    for finding in findings:
        print(f"{labels[finding.ok]}  {finding.check}: {finding.message}")
        if finding.fix:
            print(f"      fix: {finding.fix}")
    failed = sum(finding.ok is False for finding in findings)
    if failed:
        print(f"{_plural(failed, 'check')} failed.", flush=True)
        return 1
    print("All checks passed.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
