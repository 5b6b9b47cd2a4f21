"""Run real WSGI servers as subprocesses for the slow end-to-end tests.

:func:`free_port` picks a port, the ``*_command`` builders make the command
lines for waitress, gunicorn and granian, and :class:`ServerProcess` starts
one, waits until it answers HTTP and stops it again, by its PID only.

The served application is named ``module:callable``: :data:`OUR_APP`
(``roundup_wsgi.app:application``) or :data:`STOCK_APP`
(``stock_app:application``, Roundup's own dispatcher, importable because the
tests directory is put on the subprocess's ``PYTHONPATH``).
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import requests

__all__ = [
    "HTTP_TIMEOUT",
    "OUR_APP",
    "REQUEST_ID_HEADER",
    "SERVERS",
    "SERVER_HEADERS",
    "STOCK_APP",
    "LocalSession",
    "ServerError",
    "ServerProcess",
    "file_tail",
    "free_port",
    "granian_command",
    "gunicorn_command",
    "hypercorn_command",
    "log_section",
    "raw_fetch",
    "stop_process",
    "uwsgi_command",
    "waitress_command",
]

#: Our dispatcher, built from ``ROUNDUP_TRACKER_HOME``/``ROUNDUP_WSGI_WRITE_MODE``.
OUR_APP = "roundup_wsgi.app:application"
#: Roundup's stock ``roundup.cgi.wsgi_handler.RequestDispatcher`` (tests/stock_app.py).
STOCK_APP = "stock_app:application"

#: The ``tests`` directory.
TESTS_DIR = Path(__file__).resolve().parent.parent
#: The small applications servers import by name (``stock_app:application``).
APPS_DIR = TESTS_DIR / "apps"

#: Seconds to wait for a server to answer its first request.
START_TIMEOUT = 30.0
#: Seconds to wait for a server to exit after ``terminate()``.
STOP_TIMEOUT = 10.0


#: urllib opener that ignores any ``*_proxy`` environment: traffic stays local.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def stop_process(
    proc: subprocess.Popen[bytes] | None,
    sig: int = signal.SIGTERM,
    timeout: float = STOP_TIMEOUT,
) -> None:
    """Stop ``proc`` by its PID: send ``sig``, wait up to ``timeout``
    seconds, then SIGKILL and wait again.  Nothing happens if it is ``None``
    or has already exited."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


class ServerError(RuntimeError):
    """A server subprocess did not start (the message has its log tail)."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def waitress_command(port: int, app: str = OUR_APP) -> list[str]:
    """Command line serving ``app`` with waitress (4 threads) on 127.0.0.1:port."""
    return [
        sys.executable,
        "-m",
        "waitress",
        f"--listen=127.0.0.1:{port}",
        "--threads=4",
        app,
    ]


def gunicorn_command(port: int, app: str = OUR_APP) -> list[str]:
    """Command line serving ``app`` with gunicorn (2 sync workers) on 127.0.0.1:port."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "-b",
        f"127.0.0.1:{port}",
        "-w",
        "2",
        app,
    ]


def _granian_executable() -> list[str]:
    """The granian launcher: the script beside ``sys.executable``, else
    ``python -m granian``."""
    beside = Path(sys.executable).with_name("granian")
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    found = shutil.which("granian")
    if found:
        return [found]
    return [sys.executable, "-m", "granian"]


def granian_command(port: int, app: str = OUR_APP) -> list[str]:
    """Command line serving ``app`` with granian's WSGI interface (1 worker)."""
    return [
        *_granian_executable(),
        "--interface",
        "wsgi",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        app,
    ]


def hypercorn_command(port: int, app: str = OUR_APP) -> list[str]:
    """Command line serving ``app`` with hypercorn on 127.0.0.1:port, its
    asyncio worker in the process itself (``--workers 0``: one PID to stop).

    hypercorn serves a callable that is not a coroutine function as WSGI:
    it runs the application in a thread, gives ``start_response`` no write
    callable and sends the status line only with the app_iter's first chunk.
    It looks ``app``'s callable up in the module's ``__dict__``, where
    ``roundup_wsgi.app:application`` is (a real callable).
    """
    return [
        sys.executable,
        "-m",
        "hypercorn",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "0",
        app,
    ]


def uwsgi_command(port: int, app: str = OUR_APP, threads: int = 4) -> list[str]:
    """Command line serving ``app`` with uWSGI (pip's pyuwsgi, beside this
    Python): one process, ``threads`` threads, HTTP on 127.0.0.1:port."""
    return [
        str(Path(sys.executable).with_name("uwsgi")),
        "--http-socket",
        f"127.0.0.1:{port}",
        "--module",
        app,
        "--threads",
        str(threads),
        "--need-app",
        "--die-on-term",
        "--add-header",
        "Connection: close",
    ]


#: Command builders by server name.
SERVERS: dict[str, Callable[[int, str], list[str]]] = {
    "waitress": waitress_command,
    "gunicorn": gunicorn_command,
    "granian": granian_command,
    "hypercorn": hypercorn_command,
}


def file_tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file ('' if it is missing)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def log_section(path: Path, lines: int = 40) -> str:
    """``--- PATH ---`` and the :func:`file_tail` of the log at ``path``,
    for error messages."""
    return f"--- {path} ---\n{file_tail(path, lines)}"


class ServerProcess:
    """A WSGI server running as a subprocess; use it as a context manager.

    ``with ServerProcess(cmd, port, log_dir, env={...}) as server:`` starts
    ``cmd``, waits until ``server.url`` answers any HTTP response and stops
    the process on exit: ``terminate()``, ``wait(STOP_TIMEOUT)``, then
    ``kill()`` -- always by its own PID, never by name.  Its stdout and stderr
    go to ``<log_dir>/<name>.stdout.log`` / ``.stderr.log``.
    """

    def __init__(
        self,
        command: Sequence[str],
        port: int,
        log_dir: Path,
        *,
        env: Mapping[str, str] | None = None,
        name: str = "server",
        ready_path: str = "/@@file/style.css",
        start_timeout: float = START_TIMEOUT,
        poll_timeout: float = 5.0,
        preexec_fn: Callable[[], object] | None = None,
    ) -> None:
        """Prepare (not start) ``command``, which must listen on 127.0.0.1:``port``.

        :param env: extra environment variables for the subprocess.
        :param ready_path: the path polled until the server answers.
        :param poll_timeout: seconds one poll of ``ready_path`` waits for
            its answer before the next is sent (a server under valgrind
            needs long enough that it answers exactly one).
        :param preexec_fn: run in the child before ``command``
            (``subprocess.Popen``'s), e.g. to lower a resource limit.
        """
        self.command = list(command)
        self.port = port
        self.log_dir = Path(log_dir)
        self.name = name
        self.ready_path = ready_path
        self.start_timeout = start_timeout
        self.poll_timeout = poll_timeout
        self.extra_env = dict(env or {})
        self.preexec_fn = preexec_fn
        self.proc: subprocess.Popen[bytes] | None = None
        self.stdout_log = self.log_dir / f"{name}.stdout.log"
        self.stderr_log = self.log_dir / f"{name}.stderr.log"

    @property
    def url(self) -> str:
        """The server's base URL, ``http://127.0.0.1:PORT/``."""
        return f"http://127.0.0.1:{self.port}/"

    def environment(self) -> dict[str, str]:
        """The subprocess environment: ours plus ``env``, ``tests/apps`` and
        ``tests`` on PYTHONPATH."""
        env = dict(os.environ)
        env.update(self.extra_env)
        paths = [str(APPS_DIR), str(TESTS_DIR)]
        if env.get("PYTHONPATH"):
            paths.append(env["PYTHONPATH"])
        env["PYTHONPATH"] = os.pathsep.join(paths)
        env.setdefault("PYTHONUNBUFFERED", "1")
        return env

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server's stderr and stdout logs, for error messages."""
        return (
            log_section(self.stderr_log, lines)
            + "\n"
            + log_section(self.stdout_log, lines)
        )

    def start(self) -> None:
        """Start the subprocess and wait until it answers HTTP.

        :raises ServerError: the process exited or did not answer within
            ``start_timeout`` seconds (it is stopped first).
        """
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with (
            open(self.stdout_log, "wb") as out,
            open(self.stderr_log, "wb") as err,
        ):
            self.proc = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=self.environment(),
                cwd=str(self.log_dir),
                preexec_fn=self.preexec_fn,
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        """Try :meth:`_ready` every 0.1 s until it is true, for at most
        ``start_timeout`` seconds.

        :raises ServerError: the process exited, or the time ran out.
        """
        assert self.proc is not None
        deadline = time.monotonic() + self.start_timeout
        while True:
            code = self.proc.poll()
            if code is not None:
                raise ServerError(
                    f"{self.name} exited with status {code} before it could "
                    f"{self._ready_target()}\ncommand: {self.command}\n"
                    f"{self.log_tail()}"
                )
            if self._ready():
                return
            if time.monotonic() > deadline:
                raise ServerError(
                    f"{self.name} did not {self._ready_target()} within "
                    f"{self.start_timeout:.0f}s\ncommand: {self.command}\n"
                    f"{self.log_tail()}"
                )
            time.sleep(0.1)

    def _ready_target(self) -> str:
        """What :meth:`_ready` waits for, for error messages."""
        return f"answer {self.url.rstrip('/')}{self.ready_path}"

    def _ready(self) -> bool:
        """True once ``ready_path`` gets any HTTP response."""
        try:
            with _OPENER.open(
                self.url.rstrip("/") + self.ready_path, timeout=self.poll_timeout
            ):
                return True
        except urllib.error.HTTPError:
            return True  # any HTTP status means the server is up
        except (OSError, urllib.error.URLError):
            return False

    def stop(self) -> None:
        """Stop the subprocess by its PID: terminate, wait, then kill."""
        stop_process(self.proc)

    @property
    def stopped(self) -> bool:
        """True once the subprocess has exited (or was never started)."""
        return self.proc is None or self.proc.poll() is not None

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


#: Seconds a test's HTTP request may take (2 shared cores: generous).
HTTP_TIMEOUT = 60.0

#: Response headers a WSGI server sets itself (lower case): not the app's.
SERVER_HEADERS = frozenset({"date", "server", "connection", "transfer-encoding"})
#: roundup-wsgi's request id (``send_request_id``, on by default): new for
#: every request and absent from Roundup's answers, so left out of
#: comparisons with stock and with a repeated request (docs/differences.rst).
REQUEST_ID_HEADER = "x-request-id"


def raw_fetch(
    port: int,
    method: str,
    path: str,
    headers: dict[str, str],
    timeout: float = HTTP_TIMEOUT,
) -> tuple[int, list[tuple[str, str]], bytes]:
    """One request to 127.0.0.1:``port`` with ``http.client`` (no header
    added, nothing decoded).

    :param timeout: seconds for the connection and each read.
    :returns: ``(status, headers, body)``: the response headers but
        :data:`SERVER_HEADERS` and :data:`REQUEST_ID_HEADER` as sorted
        ``(lower-case name, value)`` pairs, and the raw body bytes.
    """
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, headers=headers)
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    kept = sorted(
        (k.lower(), v)
        for k, v in response.getheaders()
        if k.lower() not in SERVER_HEADERS and k.lower() != REQUEST_ID_HEADER
    )
    return response.status, kept, body


class LocalSession(requests.Session):
    """A ``requests.Session`` for talking to the servers the tests start: a
    timeout (:data:`HTTP_TIMEOUT` seconds) on every request, and no
    ``*_proxy`` environment, so all traffic stays on 127.0.0.1.

    :param verify: passed to requests (a CA bundle path for the nginx TLS
        test, ``True`` otherwise).
    """

    def __init__(self, verify: str | bool = True) -> None:
        super().__init__()
        self.trust_env = False
        self.verify = verify

    def request(  # type: ignore[override]
        self, method: str, url: str, *args: Any, **kwargs: Any
    ) -> requests.Response:
        kwargs.setdefault("timeout", HTTP_TIMEOUT)
        return super().request(method, url, *args, **kwargs)
