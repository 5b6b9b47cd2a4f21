"""One server process on its own copy of the benchmark tracker.

The benchmarks start several servers side by side (stock and ours, on and
off), each on a copy of one seeded tracker whose ``[tracker] web`` names the
server's own port (Roundup checks the Referer and Origin of a form or REST
write against it).  :func:`serve_copy` does that for one, with the test
suite's harness (``tests/helpers/servers.py``): a free port on 127.0.0.1,
a bounded wait until it answers, and a stop by PID when the ``ExitStack``
closes, even after an error.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))

from helpers import servers  # type: ignore[import-not-found]  # noqa: E402

from roundup_wsgi.tracker import set_tracker_web  # noqa: E402

#: Seconds a server may take to answer its first request (a cold start
#: compiles the tracker's templates).
START_TIMEOUT = 120


def serve_copy(
    stack: ExitStack,
    command: Callable[[int, str], list[str]],
    app: str,
    template: Path,
    work: Path,
    name: str,
    env: Mapping[str, str],
    ready_path: str = "/@@file/style.css",
    start_timeout: float = START_TIMEOUT,
    poll_timeout: float = 5.0,
) -> servers.ServerProcess:
    """Copy ``template`` to ``work / name``, serve it with ``command`` and
    return the running server; ``stack`` stops it.

    :param command: ``(port, "module:callable") -> argv`` of the server.
    :param app: the WSGI application, ``"module:callable"`` (importable
        from the repository root, which is put on ``PYTHONPATH``).
    :param name: the copy's directory and the server's name (its logs are
        ``work / f"log-{name}" / f"{name}.stdout.log"`` and ``.stderr.log``).
    :param env: more environment variables (``ROUNDUP_TRACKER_HOME`` is set
        to the copy).
    :param ready_path: the path that must answer before the server counts
        as started.
    :param start_timeout: seconds the server may take to answer
        ``ready_path`` (default :data:`START_TIMEOUT`), and one poll of it
        (``ServerProcess``'s ``poll_timeout``).
    :raises helpers.servers.ServerError: the server did not answer within
        ``start_timeout`` seconds, or exited.
    """
    port = servers.free_port()
    home = work / name
    shutil.copytree(template, home)
    set_tracker_web(home, f"http://127.0.0.1:{port}/")
    process = servers.ServerProcess(
        command(port, app),
        port,
        work / f"log-{name}",
        env={"ROUNDUP_TRACKER_HOME": str(home), "PYTHONPATH": str(ROOT), **env},
        name=name,
        ready_path=ready_path,
        start_timeout=start_timeout,
        poll_timeout=poll_timeout,
    )
    stack.enter_context(process)
    return process
