"""``roundup-wsgi serve``: one tracker, several, or the demo, on waitress.

The command checks each tracker home (and warns where ``[tracker] web`` is
not where it is served: Roundup's CSRF check would refuse form posts), then
builds the application with :func:`roundup_wsgi.app.make_app`, the one way
every entry point builds it, and serves it until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import configparser
import importlib
import logging
import os
import re
import shlex
import signal
import socket
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

from ..app import make_app
from ..options import DISPATCHER_OPTIONS, Settings
from ..tracker import (
    MissingPackageError,
    TrackerHomeError,
    check_tracker_home,
    host_port,
    same_origin,
    tracker_web,
    web_url,
)
from ..wsgi.types import WSGIApp
from .arguments import split_targets
from .demo import (
    ADMIN_USERNAME,
    DEMO_HOME,
    DEMO_MARKER,
    DEMO_USERNAME,
    create_demo,
    demo_exists,
    is_demo,
    repoint_demo,
)
from .output import PROG, CliError, config_path, note, plural, warn
from .values import DEFAULT_WEB

__all__ = ["run_serve"]

logger = logging.getLogger("roundup_wsgi.serve")


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
    server = _create_server(
        lambda environ, start_response: apps[0](environ, start_response),
        args.host,
        args.port,
        args.threads,
        args.unix_socket,
        keep_proxy_headers=bool(args.trusted_proxies),
    )
    served = None if args.unix_socket else web_url(args.host, server.effective_port)
    where = f"unix:{args.unix_socket}" if args.unix_socket else str(served)
    public = args.web or served
    try:
        _configure_logging(args)
        if args.web is None and args.host in WILDCARD_HOSTS and not args.unix_socket:
            note(
                f"--host {args.host} listens on every address, but the "
                f"public URL is {served}: logins from other machines fail "
                "(Invalid Referer) unless you give the URL they use, e.g. "
                f"--web http://{socket.getfqdn()}:{server.effective_port}/"
            )
        repoint = None
        if trackers:
            description = _prepare_trackers(args, trackers, public)
            target: str | dict[str, str] = trackers
            webs = {name: tracker_web(path) for name, path in trackers.items()}
            url = public or where
        else:
            target, url, repoint = _prepare_home(args, home, public)
            description = target
            webs = {"": repoint or tracker_web(target)}
        apps.append(_build_app(args, target))
        if repoint is not None and isinstance(target, str):
            # Everything else checked: now the demo's config.ini may change.
            previous = repoint_demo(target, repoint)
            print(
                f"Demo tracker {target}: [tracker] web changed from {previous} "
                f"to {repoint} in its config.ini (kept after the server stops)",
                flush=True,
            )
            apps[0] = _build_app(args, target)  # with the new [tracker] web
    except BaseException:
        server.close()
        raise
    if args.port == 0 and not args.unix_socket:
        print(f"Listening on port {server.effective_port}", flush=True)
    for name, web in webs.items():
        print(f"[tracker] web{f' of {name}' if name else ''}: {web}", flush=True)
    if served is None:
        url = where  # a Unix socket: the [tracker] web line has the URL
    print(
        f"Serving {description} at {url} (waitress, "
        f"{plural(args.threads, 'thread')}, write mode {args.write_mode}); "
        "press Ctrl-C to stop",
        flush=True,
    )
    logger.info(
        "serving %s at %s (waitress, %s)",
        description,
        url,
        plural(args.threads, "thread"),
    )
    _serve_until_stopped(server, args.graceful_timeout)
    logger.info("stopped")
    print("Stopped.", flush=True)
    return 0


#: ``--host`` values that listen on every address of the machine.
WILDCARD_HOSTS = ("", "0.0.0.0", "::")


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


def _prepare_home(
    args: argparse.Namespace, home: str | None, public: str | None
) -> tuple[str, str, str | None]:
    """Prepare the one tracker ``serve`` serves (the demo when ``home`` is
    None) at the public URL ``public`` (None: a Unix socket without
    ``--web``, not known here); return ``(home, url to open, new [tracker]
    web of the demo or None)``: the caller rewrites the demo's config.ini
    once everything else has been checked.

    :raises CliError: bad tracker home, broken config.ini.
    """
    with _config_errors(home or DEMO_HOME):
        try:
            if home is None:
                return _prepare_demo(public, args.admin_password)
            if args.admin_password is not None:
                note("--admin-password ignored: it only sets up the demo tracker")
            return (*_check_user_tracker(home, public), None)
        except TrackerHomeError as exc:
            raise CliError(str(exc)) from exc


@contextmanager
def _config_errors(home: str) -> Iterator[None]:
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
    args: argparse.Namespace, trackers: dict[str, str], public: str | None
) -> str:
    """Check the trackers ``serve NAME=HOME ...`` mounts and warn where
    ``[tracker] web`` is not ``<public>NAME/``; return their description.

    :raises CliError: a bad tracker home.
    """
    if args.admin_password is not None:
        note("--admin-password ignored: it only sets up the demo tracker")
    for name, given in trackers.items():
        try:
            home = check_tracker_home(given)
        except ValueError as exc:
            raise CliError(f"{name}={given}: {exc}") from exc
        if public is None:
            continue  # a Unix socket: the proxy's URL is not known here
        with _config_errors(home):
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


#: A ``serve NAME=HOME`` mount name (one path segment).
_NAME = re.compile(r"[A-Za-z0-9._~-]+")


def _build_app(args: argparse.Namespace, target: str | dict[str, str]) -> WSGIApp:
    """:func:`~roundup_wsgi.app.make_app` with the options given as flags.

    :raises CliError: a broken config.ini (naming the tracker's file), a
        value the dispatcher refuses, a bad ``--trusted-proxy``.
    """
    homes = target.values() if isinstance(target, dict) else [target]
    for home in homes:
        with _config_errors(home):
            # Read each config.ini first, so an error names its file.
            _read_config(home)
    try:
        settings = Settings.from_kwargs(
            **{name: getattr(args, name) for name in DISPATCHER_OPTIONS},
            trusted_proxies=args.trusted_proxies,
            access_log=args.access_log != "off",
            metrics=args.metrics,
            health_networks=args.health_networks,
            drain_file=args.drain_file,
            request_id_header=args.request_id_header,
            send_request_id=args.send_request_id,
            access_log_format=args.access_log_format,
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


def _create_server(
    app: Any,
    host: str,
    port: int,
    threads: int,
    unix_socket: str | None = None,
    *,
    keep_proxy_headers: bool = False,
) -> Any:
    """Bind a waitress server (TCP ``host:port``, or ``unix_socket``).

    With ``keep_proxy_headers`` (``--trusted-proxy`` given) waitress passes
    ``X-Forwarded-*``/``Forwarded`` on untouched
    (``clear_untrusted_proxy_headers=False``): our
    :class:`~roundup_wsgi.wsgi.proxy.TrustedProxyFix` decides whom to believe
    (several addresses and networks; waitress's own ``trusted_proxy`` is one
    exact address) and removes them from everyone else.  Without it,
    waitress's default removes them from every client.

    :raises CliError: the host does not resolve, the port is in use or not
        allowed, the socket path cannot be bound (each named, with the fix).
    """
    import waitress

    options: dict[str, Any] = {"threads": threads, "ident": PROG}
    if keep_proxy_headers:
        options["clear_untrusted_proxy_headers"] = False
    if unix_socket:
        directory = os.path.dirname(os.path.abspath(unix_socket))
        if not os.path.isdir(directory):
            raise CliError(
                f"--unix-socket {unix_socket}: the directory {directory} does "
                "not exist; create it or choose another path"
            )
        if os.path.exists(unix_socket) and not stat.S_ISSOCK(
            os.stat(unix_socket).st_mode
        ):
            raise CliError(
                f"--unix-socket {unix_socket}: a file that is not a socket is "
                "in the way; remove it or choose another path"
            )
        options.update(unix_socket=unix_socket, unix_socket_perms="660")
    else:
        options.update(host=host, port=port)
    try:
        return waitress.create_server(app, **options)
    except ValueError as exc:  # waitress: "Invalid host/port specified."
        raise CliError(
            f"--host {host}: cannot listen there ({exc}); give an address of "
            "this machine or a name that resolves to one, e.g. 127.0.0.1"
        ) from exc
    except OSError as exc:
        if unix_socket:
            raise CliError(
                f"--unix-socket {unix_socket}: cannot listen there: "
                f"{exc.strerror or exc}; choose another path"
            ) from exc
        raise CliError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; "
            "choose another port with --port (or stop what is using it)"
        ) from exc


def _serve_until_stopped(server: Any, graceful_timeout: float) -> None:
    """Run waitress until Ctrl-C or SIGTERM, then stop gracefully.

    The first signal marks the process as stopping (``/-/ready`` answers
    503, :func:`roundup_wsgi.health.begin_stop`), closes the listening
    sockets and keeps the loop running until no connection has a request in
    progress or output pending, for at most ``graceful_timeout`` seconds; a
    second signal stops at once.
    """
    from waitress import wasyncore
    from waitress.server import BaseWSGIServer

    from ..health import begin_stop

    stop = threading.Event()
    socket_map = getattr(server, "map", None) or server._map
    with _stop_signals(stop, begin_stop):
        try:
            while not stop.is_set():
                wasyncore.loop(timeout=0.5, map=socket_map, use_poll=True, count=1)
            logger.info("stopping: no new connections accepted")
            listeners = [
                item for item in socket_map.values() if isinstance(item, BaseWSGIServer)
            ]
            for listener in listeners:
                wasyncore.dispatcher.close(listener)  # stop accepting
            unix_socket = server.adj.unix_socket
            if unix_socket and os.path.exists(unix_socket):
                os.unlink(unix_socket)
            deadline = time.monotonic() + graceful_timeout

            waiting = _busy_requests(socket_map)
            if waiting:
                logger.info(
                    "stopping: waiting for %s in progress (at most %g s)",
                    plural(waiting, "request"),
                    graceful_timeout,
                )
            while waiting and time.monotonic() < deadline:
                wasyncore.loop(timeout=0.1, map=socket_map, use_poll=True, count=1)
                waiting = _busy_requests(socket_map)
            if waiting:
                logger.warning(
                    "stopping: %s still in progress after %g s "
                    "(--graceful-timeout) cut off",
                    plural(waiting, "request"),
                    graceful_timeout,
                )
        except KeyboardInterrupt:  # the second signal
            logger.info("stopping at once: a second signal")
        finally:
            server.task_dispatcher.shutdown(timeout=1)
            wasyncore.close_all(socket_map)


def _busy_requests(socket_map: dict[Any, Any]) -> int:
    """The requests of waitress's connections in progress or with output
    pending (a connection with output but no request counts one)."""
    from waitress.channel import HTTPChannel

    return sum(
        len(channel.requests) or 1
        for channel in socket_map.values()
        if isinstance(channel, HTTPChannel)
        and (channel.requests or channel.total_outbufs_len)
    )


@contextmanager
def _stop_signals(stop: threading.Event, first: Callable[[], None]) -> Iterator[None]:
    """While inside, SIGINT and SIGTERM set ``stop`` and call ``first`` the
    first time and raise KeyboardInterrupt the second; a no-op outside the
    main thread, where signals cannot be set."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        first()

    previous = {
        signum: signal.signal(signum, handle)
        for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
