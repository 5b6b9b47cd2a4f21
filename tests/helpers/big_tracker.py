"""A tracker with many issues, for the CSV export tests and the benchmark.

:func:`build_big_tracker` seeds it with Roundup's own API (``db.issue.create``)
in one transaction; its ``interfaces.py`` adds a *gate* a test can use to
prove that a response is streamed (see :data:`GATE_HEADER`).
"""

from __future__ import annotations

from pathlib import Path

from roundup import instance

from roundup_wsgi.tracker import create_tracker

#: How many issues the export tests and the benchmark use.
ISSUES = 20_000
#: The export: every issue, these columns, sorted by id.
EXPORT_PATH = "issue?@action=export_csv&@columns=id,title,status,priority&@sort=id"

#: Request header naming a file: the export then stops after its first
#: data row until that file exists (up to GATE_TIMEOUT seconds).  While it
#: waits, ``<file>.waiting`` exists; once it goes on, ``<file>.passed``; if
#: a later write is interrupted by GeneratorExit (the server closed the
#: response), ``<file>.interrupted``.
GATE_HEADER = "X-Test-Export-Gate"
#: Seconds the gate waits before the export fails.
GATE_TIMEOUT = 120

# The tracker-home hook Roundup loads (interfaces.py may define Client).
# ExportCSVAction writes each row through Client._socket_op.
INTERFACES_PY = f"""
import os
import time

from roundup.cgi import client


class Client(client.Client):
    _rows_written = 0

    def _socket_op(self, call, *args, **kwargs):
        gate = self.env.get("HTTP_{GATE_HEADER.upper().replace("-", "_")}")
        try:
            client.Client._socket_op(self, call, *args, **kwargs)
        except GeneratorExit:
            if gate:
                open(gate + ".interrupted", "w").close()
            raise
        self._rows_written += 1
        if gate and self._rows_written == 2:  # the header and the first row
            open(gate + ".waiting", "w").close()
            deadline = time.monotonic() + {GATE_TIMEOUT}
            while not os.path.exists(gate):
                if time.monotonic() > deadline:
                    raise RuntimeError("export gate " + gate + " never opened")
                time.sleep(0.02)
            open(gate + ".passed", "w").close()
"""


def issue_title(number: int) -> str:
    """The title of issue ``number``: quotes, a comma, markup and non-ASCII
    text, so the CSV quoting and encoding show."""
    return f'Issue {number}: "quoted", with a comma & <b>markup</b> - Grüße, 東京'


def build_big_tracker(home: Path, issues: int = ISSUES) -> Path:
    """Create a classic/sqlite tracker at ``home`` holding ``issues`` issues.

    Seeded through Roundup's API in one transaction; sqlite's
    ``synchronous`` is off while seeding (Roundup commits its id counter on
    every create), which takes about 5 s for 20,000 issues.
    """
    create_tracker(home, admin_password="admin-secret", web="http://localhost/")
    (home / "interfaces.py").write_text(INTERFACES_PY)
    db = instance.open(str(home)).open("admin")
    try:
        db.sql("PRAGMA synchronous=OFF")
        for number in range(1, issues + 1):
            db.issue.create(
                title=issue_title(number),
                status=str(1 + number % 8),
                priority=str(1 + number % 5),
            )
        db.commit()
    finally:
        db.close()
    return home
