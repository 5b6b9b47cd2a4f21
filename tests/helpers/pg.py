"""A throw-away PostgreSQL server for tests (imported as ``pg``).

:class:`PostgresServer` runs Debian's ``initdb`` and ``postgres`` (from
``/usr/lib/postgresql/*/bin``, found with :func:`system.require_program`) in
a new temporary directory, listening on a free loopback port and on a unix
socket in that directory, with ``trust`` authentication for its one
superuser.  PostgreSQL refuses to run as root, so as root the directory is
given to an unprivileged user (``postgres`` if it exists, else ``nobody``)
and both programs run as that user (``subprocess.Popen(user=...)``, no
intermediate process).  The server is stopped by its own PID (SIGINT:
PostgreSQL's "fast shutdown"), never by name; :meth:`PostgresServer.stop`
and :meth:`PostgresServer.start` may be called again mid-test to simulate
an outage.

:func:`create_pg_tracker` makes a Roundup tracker on it with
:func:`roundup_wsgi.tracker.create_tracker` (backend ``postgresql``, the
``[rdbms]`` settings from :meth:`PostgresServer.rdbms_settings`).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .servers import file_tail, free_port, stop_process
from .system import require_program

__all__ = ["PostgresServer", "create_pg_tracker", "running_postgres"]

#: Where Debian installs the PostgreSQL server programs.
PG_BIN_GLOB = "/usr/lib/postgresql/*/bin/"
INSTALL_HINT = "apt-get install postgresql"
#: Seconds to wait for the server to accept connections / to exit.
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
#: The superuser initdb creates (trust authentication, no password).
SUPERUSER = "roundup"


def _unprivileged_user() -> str | None:
    """The user to run PostgreSQL as when we are root (else ``None``)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise RuntimeError("running as root and neither 'postgres' nor 'nobody' exists")


class PostgresServer:
    """One PostgreSQL cluster in its own temporary directory.

    :param log_dir: where ``postgres.log`` goes (also readable after stop).
    """

    def __init__(self, log_dir: Path) -> None:
        self.initdb = require_program("initdb", INSTALL_HINT, PG_BIN_GLOB + "initdb")
        self.postgres = require_program(
            "postgres", INSTALL_HINT, PG_BIN_GLOB + "postgres"
        )
        self.user = _unprivileged_user()
        # Not under pytest's tmp_path: that is mode 0700 for root, which the
        # unprivileged user could not enter.
        self.base = Path(tempfile.mkdtemp(prefix="roundup-wsgi-pg-"))
        self.data = self.base / "data"
        self.socket_dir = self.base / "run"
        self.socket_dir.mkdir()
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.log_file = self.base / "postgres.log"
        self.port = free_port()
        self.host = "127.0.0.1"
        self.proc: subprocess.Popen[bytes] | None = None
        if self.user is not None:
            for path in (self.base, self.socket_dir):
                shutil.chown(path, self.user)
        self._run([self.initdb, "-D", str(self.data), "-U", SUPERUSER, "-A", "trust"])

    def _run(self, command: list[str]) -> None:
        result = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            user=self.user,
            cwd=str(self.base),
            timeout=START_TIMEOUT * 2,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{command[0]} failed ({result.returncode}):\n"
                f"{result.stdout.decode(errors='replace')}\n"
                f"{result.stderr.decode(errors='replace')}"
            )

    def start(self) -> None:
        """Start ``postgres`` and wait until it accepts connections.

        :raises RuntimeError: it exited or did not accept connections within
            :data:`START_TIMEOUT` seconds (the log tail is in the message).
        """
        if self.running:
            return
        log = open(self.log_file, "ab")  # noqa: SIM115 - closed below
        try:
            self.proc = subprocess.Popen(
                [
                    self.postgres,
                    "-D",
                    str(self.data),
                    "-p",
                    str(self.port),
                    "-k",
                    str(self.socket_dir),
                    "-c",
                    f"listen_addresses={self.host}",
                    "-c",
                    "fsync=off",
                    "-c",
                    "max_connections=60",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                user=self.user,
                cwd=str(self.base),
            )
        finally:
            log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while not self.accepts_connections():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"PostgreSQL did not start on port {self.port}:\n{self.log_tail()}"
                )
            time.sleep(0.2)

    def accepts_connections(self) -> bool:
        """True if a connection to the ``postgres`` database succeeds now."""
        import psycopg2

        try:
            conn = psycopg2.connect(
                host=self.host,
                port=self.port,
                user=SUPERUSER,
                dbname="postgres",
                connect_timeout=3,
            )
        except psycopg2.OperationalError:
            return False
        conn.close()
        return True

    def stop(self) -> None:
        """Stop the server by its PID (SIGINT, then SIGKILL after
        :data:`STOP_TIMEOUT` seconds); nothing happens if it is not running."""
        # SIGINT is PostgreSQL's "fast" shutdown.
        stop_process(self.proc, signal.SIGINT, STOP_TIMEOUT)

    @property
    def running(self) -> bool:
        """True while the postmaster process runs."""
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        """The end of the server log."""
        return file_tail(self.log_file, lines)

    def rdbms_settings(self, database: str) -> dict[str, str | int]:
        """Roundup ``[rdbms]`` options (config.ini names) for ``database``."""
        return {
            "rdbms_name": database,
            "rdbms_host": self.host,
            "rdbms_port": self.port,
            "rdbms_user": SUPERUSER,
            "rdbms_password": "",
        }

    def cleanup(self) -> None:
        """Stop the server, keep its log in ``log_dir``, remove the directory."""
        self.stop()
        if self.log_file.exists():
            shutil.copy(self.log_file, self.log_dir / "postgres.log")
        shutil.rmtree(self.base, ignore_errors=True)


@contextmanager
def running_postgres(log_dir: Path) -> Iterator[PostgresServer]:
    """A started :class:`PostgresServer`, stopped and removed afterwards."""
    server = PostgresServer(log_dir)
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


def create_pg_tracker(
    server: PostgresServer,
    home: Path,
    database: str,
    *,
    admin_password: str,
    web: str,
    settings: Mapping[str, str | int] | None = None,
    template: str = "classic",
) -> Path:
    """Create a tracker at ``home`` from ``template`` whose database
    ``database`` lives on ``server`` (Roundup creates the database)."""
    from roundup_wsgi.tracker import create_tracker

    options = server.rdbms_settings(database)
    options.update(settings or {})
    return Path(
        create_tracker(
            home,
            admin_password=admin_password,
            template=template,
            backend="postgresql",
            web=web,
            settings=options,
        )
    )


@contextmanager
def tracker_connection(server: PostgresServer, home: Path) -> Iterator[Any]:
    """A psycopg2 connection, as the superuser, to the database of the
    tracker at ``home`` (as a DBA's psql would connect); closed after."""
    import psycopg2
    import roundup.instance

    config = roundup.instance.open(str(home)).config
    conn = psycopg2.connect(
        host=server.host, port=server.port, user=SUPERUSER, dbname=config.RDBMS_NAME
    )
    try:
        yield conn
    finally:
        conn.close()
