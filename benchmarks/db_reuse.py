"""Databases a server keeps open after bursts: the check of issue 24's leak.

Run from the repository root (with the test extras installed)::

    python benchmarks/db_reuse.py [--server granian] [--burst 150] [--idle 90]

It serves a seeded sqlite tracker with ``roundup_wsgi.app:application``
(granian with one worker and up to ``--burst`` + 10 blocking threads by
default), sends ``--burst`` concurrent ``GET /issue1`` three times, and
after each burst and after ``--idle`` seconds of idle prints the server's
threads and its open file descriptors under the tracker's ``db/``
directory.  A kept database must be closed within 1.5 x ``reuse_db_idle``
(60 s by default) of its last request, so with the default ``--idle`` the
count after idle is 0; before roundup-wsgi 0.2 it grew by about 880 per
burst under granian.  Everything runs on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from helpers import seeded, servers  # noqa: E402

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _command(server: str, port: int, burst: int) -> list[str]:
    if server == "granian":
        line = servers.granian_command(port)
        return [*line[:-1], "--blocking-threads", str(burst + 10), line[-1]]
    if server == "waitress":
        line = servers.waitress_command(port)
        return [*line[:-1], f"--threads={burst}", line[-1]]
    raise SystemExit(f"db_reuse: unknown server {server!r}: granian or waitress")


def _fetch(url: str) -> int | str:
    try:
        with OPENER.open(url, timeout=60) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError as exc:
        return type(exc).__name__


def _process_tree(pid: int) -> list[int]:
    """``pid`` and its children (granian's worker), from /proc."""
    found = [pid]
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if entry.name.isdigit() and int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def _counts(pid: int, db_dir: str) -> tuple[int, int]:
    """(threads, file descriptors open under ``db_dir``) of the server."""
    threads = fds = 0
    for each in _process_tree(pid):
        try:
            threads += len(os.listdir(f"/proc/{each}/task"))
            for fd in os.listdir(f"/proc/{each}/fd"):
                try:
                    if os.readlink(f"/proc/{each}/fd/{fd}").startswith(db_dir):
                        fds += 1
                except OSError:
                    continue
        except OSError:
            continue
    return threads, fds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", default="granian", help="granian or waitress")
    parser.add_argument("--burst", type=int, default=150, help="concurrent requests")
    parser.add_argument("--idle", type=float, default=90.0, help="seconds idle")
    parser.add_argument("--cycles", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        home = seeded.build_seeded_tracker(Path(scratch) / "tracker")
        port = servers.free_port()
        db_dir = str(home / "db") + os.sep
        with servers.ServerProcess(
            _command(args.server, port, args.burst),
            port,
            Path(scratch),
            env={"ROUNDUP_TRACKER_HOME": str(home)},
        ) as server:
            url = f"http://127.0.0.1:{port}/issue1"
            for cycle in range(1, args.cycles + 1):
                with concurrent.futures.ThreadPoolExecutor(args.burst) as pool:
                    answers = list(pool.map(_fetch, [url] * args.burst))
                failed = sum(1 for answer in answers if answer != 200)
                assert server.proc is not None
                threads, fds = _counts(server.proc.pid, db_dir)
                time.sleep(args.idle)
                idle_threads, idle_fds = _counts(server.proc.pid, db_dir)
                print(
                    f"cycle {cycle}: {failed} of {args.burst} not 200; after the "
                    f"burst threads {threads}, db fds {fds} | after {args.idle:g} s "
                    f"idle threads {idle_threads}, db fds {idle_fds}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
