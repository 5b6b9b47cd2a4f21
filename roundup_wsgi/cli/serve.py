"""``roundup-wsgi serve``: one tracker, several, or the demo, on waitress.

The command checks its arguments, binds the server (:mod:`.server`),
checks what it serves (:mod:`.targets`), then builds the application with
:func:`roundup_wsgi.app.make_app`, the one way every entry point builds it,
and serves it until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import socket
import sys

from ..app import make_app
from ..options import OPTIONS, Settings
from ..tracker import MissingPackageError, web_url
from ..wsgi.types import WSGIApp
from .arguments import split_targets
from .demo import repoint_demo
from .output import CliError, note, plural
from .server import create_server

# tests/conftest.py's servers_made fixture replaces it here.
from .server import serve_until_stopped as _serve_until_stopped
from .targets import Targets, config_errors, prepare_targets

__all__ = ["run_serve"]

logger = logging.getLogger("roundup_wsgi.serve")

#: ``--host`` values that listen on every address of the machine.
WILDCARD_HOSTS = ("", "0.0.0.0", "::")


def run_serve(args: argparse.Namespace) -> int:
    """Handle ``roundup-wsgi serve``: prepare the tracker(s), then serve
    until Ctrl-C or SIGTERM, letting requests in progress finish (up to
    ``--graceful-timeout`` seconds).

    Every argument and precondition is checked (and the application built)
    before a file is changed: only the demo's ``[tracker] web`` is ever
    rewritten, and only once the start cannot fail for another reason.

    :param args: the parsed arguments of ``serve``.
    :returns: 0 once the server stops.
    :raises CliError: bad tracker home, broken config.ini, bad option, a
        missing optional package, an address that cannot be listened on
        (host, port, socket path), an access log file that cannot be opened.
    """
    _check_networks(args)
    _check_packages(args)
    home, trackers = split_targets(list(args.tracker_home or []), "serve")
    # Bind first: a busy port fails before the tracker is created or changed.
    apps: list[WSGIApp] = []
    server = create_server(
        lambda environ, start_response: apps[0](environ, start_response),
        args.host,
        args.port,
        args.threads,
        args.unix_socket,
        keep_proxy_headers=bool(args.trusted_proxies),
    )
    served = None if args.unix_socket else web_url(args.host, server.effective_port)
    where = f"unix:{args.unix_socket}" if args.unix_socket else str(served)
    try:
        _configure_logging(args)
        _note_wildcard_host(args, served, server.effective_port)
        targets = prepare_targets(
            home, trackers, args.web or served, where, args.admin_password
        )
        apps.append(_start_app(args, targets))
    except BaseException:
        server.close()
        raise
    # A Unix socket: the [tracker] web lines have the URL.
    _announce(args, server.effective_port, targets, targets.url if served else where)
    _serve_until_stopped(server, args.graceful_timeout)
    logger.info("stopped")
    print("Stopped.", flush=True)
    return 0


def _note_wildcard_host(
    args: argparse.Namespace, served: str | None, port: int
) -> None:
    """Note that logins from other machines fail when ``--host`` listens on
    every address but no ``--web`` names the URL they use."""
    if args.web is None and args.host in WILDCARD_HOSTS and not args.unix_socket:
        note(
            f"--host {args.host} listens on every address, but the "
            f"public URL is {served}: logins from other machines fail "
            "(Invalid Referer) unless you give the URL they use, e.g. "
            f"--web http://{socket.getfqdn()}:{port}/"
        )


def _start_app(args: argparse.Namespace, targets: Targets) -> WSGIApp:
    """Build the application; then, everything else checked, point the
    demo's ``[tracker] web`` where it is served (and say so) and build it
    again with the new setting.

    :raises CliError: as :func:`_build_app`.
    """
    app = _build_app(args, targets.target)
    if targets.repoint is not None and isinstance(targets.target, str):
        previous = repoint_demo(targets.target, targets.repoint)
        print(
            f"Demo tracker {targets.target}: [tracker] web changed from {previous} "
            f"to {targets.repoint} in its config.ini (kept after the server stops)",
            flush=True,
        )
        app = _build_app(args, targets.target)  # with the new [tracker] web
    return app


def _announce(args: argparse.Namespace, port: int, targets: Targets, url: str) -> None:
    """Print (and log) what is served where: the port picked for
    ``--port 0``, each ``[tracker] web``, and the ``Serving ...`` line."""
    if args.port == 0 and not args.unix_socket:
        print(f"Listening on port {port}", flush=True)
    for name, web in targets.webs.items():
        print(f"[tracker] web{f' of {name}' if name else ''}: {web}", flush=True)
    threads = plural(args.threads, "thread")
    print(
        f"Serving {targets.description} at {url} (waitress, "
        f"{threads}, write mode {args.write_mode}); press Ctrl-C to stop",
        flush=True,
    )
    logger.info("serving %s at %s (waitress, %s)", targets.description, url, threads)


def _check_packages(args: argparse.Namespace) -> None:
    """:raises CliError: an option needs a package that is not installed
    (checked before anything is bound, created or changed)."""
    needed = []
    if args.metrics:
        needed.append(("--metrics", "prometheus_client", "metrics"))
    for flag, module, extra in needed:
        try:
            importlib.import_module(module)
        except ImportError:
            raise CliError(
                f"{flag} needs the {module} package, which is not installed: "
                f"pip install 'roundup-wsgi[{extra}]' (or leave out {flag})"
            ) from None


def _check_networks(args: argparse.Namespace) -> None:
    """:raises CliError: a ``--trusted-proxy`` or ``--health-network`` that
    is no address or network (checked before anything is bound or made)."""
    from ..wsgi.proxy import parse_networks

    for flag, given, what in (
        ("--trusted-proxy", args.trusted_proxies, "trusted proxy"),
        ("--health-network", args.health_networks, "health network"),
    ):
        if given:
            try:
                parse_networks(given, what)
            except ValueError as exc:
                raise CliError(f"{flag}: {exc}") from exc


def _configure_logging(args: argparse.Namespace) -> None:
    """Log messages at ``--log-level`` to stderr; the access log
    (``--access-log``) to stderr, a file, or nowhere.

    :raises CliError: the access log file cannot be opened.
    """
    from ..app import AccessLogHandler
    from ..wsgi.accesslog import LOGGER_NAME

    logging.basicConfig(level=args.log_level.upper())
    target = args.access_log
    if target == "off":
        return
    if target == "-":
        handler = AccessLogHandler(sys.stderr)
    else:
        try:
            # Closed when the process ends; each line is flushed.
            stream = open(target, "a", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise CliError(
                f"--access-log {target}: cannot open it: "
                f"{exc.strerror or exc}; give a writable file, - or off"
            ) from exc
        handler = AccessLogHandler(stream)
    access = logging.getLogger(LOGGER_NAME)
    for old in list(access.handlers):
        access.removeHandler(old)
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    access.propagate = False


def _build_app(args: argparse.Namespace, target: str | dict[str, str]) -> WSGIApp:
    """:func:`~roundup_wsgi.app.make_app` with the value of each flag of the
    options table (:data:`roundup_wsgi.options.OPTIONS`).

    :raises CliError: a broken config.ini (naming the tracker's file), a
        value the dispatcher refuses, a bad ``--trusted-proxy``.
    """
    homes = target.values() if isinstance(target, dict) else [target]
    for home in homes:
        with config_errors(home):
            # Read each config.ini first, so an error names its file.
            _read_config(home)
    try:
        settings = Settings.from_kwargs(
            **{o.name: getattr(args, o.name) for o in OPTIONS if o.cli_flag},
            # no flag of its own: --access-log FILE|-|off
            access_log=args.access_log != "off",
        )
        return make_app(target, settings=settings)
    except (ValueError, MissingPackageError, ImportError) as exc:
        # TrackerHomeError, refused by the dispatcher, or e.g. jinja2 or
        # prometheus_client missing
        raise CliError(str(exc)) from exc


def _read_config(home: str) -> None:
    """Load the tracker's configuration as Roundup does (raises its errors)."""
    from roundup.configuration import CoreConfig

    CoreConfig(home)
