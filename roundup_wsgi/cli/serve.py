"""``roundup-wsgi serve``: one tracker, several, or the demo, on waitress.

The command checks each tracker home (and warns where ``[tracker] web`` is
not where it is served: Roundup's CSRF check would refuse form posts), then
builds the application with :func:`roundup_wsgi.app.make_app`, the one way
every entry point builds it, and serves it until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import configparser
import logging
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from ..app import make_app
from ..options import DISPATCHER_OPTIONS
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
    DEMO_USERNAME,
    create_demo,
    demo_exists,
    repoint_demo,
)
from .output import PROG, CliError, config_path, note, plural, warn

__all__ = ["run_serve"]


def run_serve(args: argparse.Namespace) -> int:
    """Handle ``roundup-wsgi serve``: prepare the tracker(s), then serve
    until Ctrl-C or SIGTERM.

    :param args: the parsed arguments of ``serve``.
    :returns: 0 once the server stops.
    :raises CliError: bad tracker home, broken config.ini, bad option, port
        in use.
    """
    served = web_url(args.host, args.port)
    home, trackers = split_targets(list(args.tracker_home or []), "serve")
    # Bind first: a busy port fails before the tracker is created or changed.
    apps: list[WSGIApp] = []
    server = _create_server(
        lambda environ, start_response: apps[0](environ, start_response),
        args.host,
        args.port,
        args.threads,
    )
    try:
        if trackers:
            description, url = _prepare_trackers(args, trackers, served), served
            target: str | dict[str, str] = trackers
        else:
            target, url = _prepare_home(args, home, served)
            description = target
        apps.append(_build_app(args, target))
    except BaseException:
        server.close()
        raise
    print(
        f"Serving {description} at {url} (waitress, {plural(args.threads, 'thread')}, "
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


def _prepare_home(
    args: argparse.Namespace, home: str | None, served: str
) -> tuple[str, str]:
    """Prepare the one tracker ``serve`` serves (the demo when ``home`` is
    None); return ``(home, url to open)``.

    :raises CliError: bad tracker home, broken config.ini.
    """
    with _config_errors(home or DEMO_HOME):
        try:
            if home is None:
                return _prepare_demo(served, args.admin_password)
            if args.admin_password is not None:
                note("--admin-password ignored: it only sets up the demo tracker")
            return _check_user_tracker(home, served)
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
    args: argparse.Namespace, trackers: dict[str, str], served: str
) -> str:
    """Check the trackers ``serve NAME=HOME ...`` mounts and warn where
    ``[tracker] web`` is not ``<served>NAME/``; return their description.

    :raises CliError: a bad tracker home.
    """
    if args.admin_password is not None:
        note("--admin-password ignored: it only sets up the demo tracker")
    for name, given in trackers.items():
        try:
            home = check_tracker_home(given)
        except ValueError as exc:
            raise CliError(f"{name}={given}: {exc}") from exc
        web = tracker_web(home)
        expected = served + name + "/"
        if web.rstrip("/") != expected.rstrip("/"):
            warn(
                f"{config_path(home)} sets [tracker] web = {web} but it is "
                f"served at {expected}: Roundup rejects form posts and builds "
                f"wrong links unless they match; set 'web = {expected}' in "
                f"the [tracker] section of {config_path(home)}."
            )
    return ", ".join(f"{name}={home}" for name, home in trackers.items())


def _build_app(args: argparse.Namespace, target: str | dict[str, str]) -> WSGIApp:
    """:func:`~roundup_wsgi.app.make_app` with the options given as flags.

    :raises CliError: a broken config.ini (naming the tracker's file), a
        value the dispatcher refuses, a bad ``--trusted-proxy``.
    """
    from ..wsgi.proxy import parse_networks

    options = {name: getattr(args, name) for name in DISPATCHER_OPTIONS}
    if args.trusted_proxies:
        try:
            parse_networks(args.trusted_proxies)
        except ValueError as exc:
            raise CliError(f"--trusted-proxy: {exc}") from exc
    homes = target.values() if isinstance(target, dict) else [target]
    for home in homes:
        with _config_errors(home):
            # Read each config.ini first, so an error names its file.
            _read_config(home)
    try:
        return make_app(target, trusted_proxies=args.trusted_proxies, **options)
    except (ValueError, MissingPackageError) as exc:
        # TrackerHomeError, refused by the dispatcher, or e.g. jinja2 missing
        raise CliError(str(exc)) from exc


def _read_config(home: str) -> None:
    """Load the tracker's configuration as Roundup does (raises its errors)."""
    from roundup.configuration import CoreConfig

    CoreConfig(home)


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
        note(
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
    warn(
        f"{config_path(home)} sets [tracker] web = {web} but the server "
        f"listens at {served}.  Roundup will reject form posts (its CSRF check "
        "compares the Origin/Referer header with [tracker] web) unless they "
        f"match: set 'web = {served}' in the [tracker] section of "
        f"{config_path(home)}, or serve on that host and port "
        f"(--host {host} --port {port})."
    )
    return home, served


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
