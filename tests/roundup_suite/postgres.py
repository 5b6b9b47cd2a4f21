"""A throw-away PostgreSQL server for Roundup's suite (its PostgreSQL classes).

Usage (``.ci/roundup-suite`` with ``ROUNDUP_SUITE_POSTGRESQL=1``)::

    python -m tests.roundup_suite.postgres READY_FILE

Starts the project's test server (:class:`pg.PostgresServer`: Debian's
``initdb`` and ``postgres`` in a temporary directory, trust authentication,
listening on a free port of 127.0.0.1), creates the role Roundup's suite
logs in as (``rounduptest``, password ``rounduptest``, allowed to create
databases: ``test/db_test_base.py``), writes the port number to
``READY_FILE``, and runs until SIGTERM or SIGINT, then stops the server by
its PID and removes its directory.  Roundup's suite connects to
``localhost`` without a port, so libpq takes the port from ``PGPORT``.

Exits 1 with a one-line message if PostgreSQL or psycopg2 is missing or the
server does not start within :data:`pg.START_TIMEOUT` seconds.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

#: The role and password in Roundup's ``test/db_test_base.py``.
ROLE = "rounduptest"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(
            "usage: python -m tests.roundup_suite.postgres READY_FILE", file=sys.stderr
        )
        return 2
    ready = Path(argv[0])
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    try:
        import psycopg2
        from helpers import pg
    except (ImportError, RuntimeError) as error:
        print(f"roundup-suite postgres: {error}", file=sys.stderr)
        return 1
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        # The server log is kept beside READY_FILE.
        server = pg.PostgresServer(ready.resolve().parent)
    except Exception as error:
        print(f"roundup-suite postgres: {error}", file=sys.stderr)
        return 1
    try:
        server.start()
        conn = psycopg2.connect(
            host=server.host, port=server.port, user=pg.SUPERUSER, dbname="postgres"
        )
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute(f"CREATE ROLE {ROLE} LOGIN CREATEDB PASSWORD '{ROLE}'")
        conn.close()
        ready.write_text(f"{server.port}\n")
        while not stop.wait(1.0):
            pass
    except Exception as error:
        print(f"roundup-suite postgres: {error}", file=sys.stderr)
        return 1
    finally:
        server.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
