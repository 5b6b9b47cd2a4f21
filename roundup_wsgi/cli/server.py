"""The waitress server of ``roundup-wsgi serve``: bound on TCP or a Unix
socket, run until Ctrl-C or SIGTERM, then stopped gracefully."""

from __future__ import annotations

import logging
import os
import signal
import stat
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from .output import PROG, CliError, plural

__all__ = ["create_server", "serve_until_stopped"]

#: The logger of ``serve``'s own messages (start, stop).
logger = logging.getLogger("roundup_wsgi.serve")


def create_server(
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
        options.update(_unix_socket_options(unix_socket))
    else:
        options.update(host=host, port=port)
    try:
        return waitress.create_server(app, **options)
    except (ValueError, OSError) as exc:
        raise _listen_error(exc, host, port, unix_socket) from exc


def _unix_socket_options(path: str) -> dict[str, Any]:
    """waitress's options to listen on the Unix socket ``path`` (mode 660).

    :raises CliError: its directory is missing, or a file that is not a
        socket is in the way.
    """
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise CliError(
            f"--unix-socket {path}: the directory {directory} does "
            "not exist; create it or choose another path"
        )
    if os.path.exists(path) and not stat.S_ISSOCK(os.stat(path).st_mode):
        raise CliError(
            f"--unix-socket {path}: a file that is not a socket is "
            "in the way; remove it or choose another path"
        )
    return {"unix_socket": path, "unix_socket_perms": "660"}


def _listen_error(
    exc: ValueError | OSError, host: str, port: int, unix_socket: str | None
) -> CliError:
    """The error of a server that cannot be bound: waitress's ValueError
    ("Invalid host/port specified.") names the host, an OSError the socket
    path or the host and port."""
    if isinstance(exc, ValueError):
        return CliError(
            f"--host {host}: cannot listen there ({exc}); give an address of "
            "this machine or a name that resolves to one, e.g. 127.0.0.1"
        )
    if unix_socket:
        return CliError(
            f"--unix-socket {unix_socket}: cannot listen there: "
            f"{exc.strerror or exc}; choose another path"
        )
    return CliError(
        f"cannot listen on {host}:{port}: {exc.strerror or exc}; "
        "choose another port with --port (or stop what is using it)"
    )


def serve_until_stopped(server: Any, graceful_timeout: float) -> None:
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
