"""What the operations layers cost a real server, counted in instructions.

CPU time per request under a server moves by tens of percent between two
runs of the same application on a busy machine (the kernel's work for the
loopback sockets, and under waitress the threads' handing the interpreter
lock to each other, are charged to whoever runs at that moment), more than
the 10% the static fast path's target allows.  The number of instructions
the server's processes execute does not move: this module runs each server
under valgrind (``callgrind``, following gunicorn's forked worker) and
counts them.

For each server and path it starts four servers in turn, each on its own
copy of the seeded tracker:

* *off*: ``benchmarks.bare:application``, a bare dispatcher;
* *on*: ``roundup_wsgi.app:application`` with ``ROUNDUP_WSGI_ACCESS_LOG``
  and ``ROUNDUP_WSGI_METRICS`` on (the log to the server's stderr, a file),

each once with ``requests`` requests and once with ``requests // 5``; the
difference of the two totals divided by the difference of the request
counts is the instructions per request, the server's start-up and stop
cancelled out.  Requests come one at a time from this process (not counted),
each on a new connection that the server closes (``Connection: close``),
with a browser's ``Accept-Encoding``.

gunicorn runs one sync worker (its master's idle loop is counted too: a few
thousand instructions a second): one thread answers, so the counts repeat
from run to run.  waitress runs four threads, which valgrind runs one at a
time, switching at points of its own: how often the main thread polls and
waits for the interpreter lock then varies with the interleaving, so its
counts move between runs and with the client (from +15% to +36% for the
same code); read them as an upper bound, not a measure.  ``GET /-/ready``
is not sent: it costs one database open at most once per second per
process, whatever the load.

Run: ``python -m benchmarks.served_instructions [--servers
gunicorn[,waitress]] [--requests 1000]``; needs valgrind (Debian's
``valgrind``); each server start under valgrind takes about a minute.
"""

from __future__ import annotations

import argparse
import http.client
import shutil
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from . import seed, serving

#: (label, path, target overhead) of the requests counted.
PATHS = (
    ("GET /@@file/style.css, browser Accept-Encoding", "/@@file/style.css", 0.10),
    ("GET /issue1", "/issue1", 0.03),
)
#: The request headers: a browser's compression choice, and one request per
#: connection (the server closes it, as for the HTTP/1.0 of ``ab``).
HEADERS = {"Accept-Encoding": "gzip, deflate, br", "Connection": "close"}
#: (off application, on application, environment of the on one).
SIDES = (
    ("off", "benchmarks.bare:application", {}),
    (
        "on",
        "roundup_wsgi.app:application",
        {"ROUNDUP_WSGI_ACCESS_LOG": "on", "ROUNDUP_WSGI_METRICS": "on"},
    ),
)
#: Seconds a server under valgrind may take to answer, and to stop.
VALGRIND_TIMEOUT = 600


def _gunicorn_one_worker(port: int, app: str) -> list[str]:
    from helpers import servers  # type: ignore[import-not-found]

    command: list[str] = servers.gunicorn_command(port, app)
    command[command.index("-w") + 1] = "1"
    # No worker timeout: under valgrind on a busy machine a request can take
    # longer than gunicorn's 30 s, and the killed worker's request would be
    # answered 500 by gunicorn (ending the count).
    return [*command, "--timeout", "0"]


def _waitress(port: int, app: str) -> list[str]:
    from helpers import servers

    command: list[str] = servers.waitress_command(port, app)
    return command


#: ``name: (label, (port, app) -> argv)``.
SERVERS: dict[str, tuple[str, Callable[[int, str], list[str]]]] = {
    "gunicorn": ("gunicorn, 1 sync worker", _gunicorn_one_worker),
    "waitress": ("waitress, 4 threads", _waitress),
}


@dataclass
class Count:
    """Instructions per request of one path under one server, off and on."""

    label: str
    target: float
    off: float
    on: float

    @property
    def overhead(self) -> float:
        """``on / off - 1``."""
        return self.on / self.off - 1


def _requests(port: int, path: str, count: int) -> None:
    for _ in range(count):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            connection.request("GET", path, headers=HEADERS)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise SystemExit(f"benchmarks: {path} answered {response.status}")
        finally:
            connection.close()


def _total(folder: Path) -> int:
    """The instructions counted in every callgrind output file of
    ``folder`` (one per process: gunicorn's master and worker)."""
    total = 0
    for path in folder.glob("callgrind.*"):
        with path.open() as lines:
            for line in lines:
                if line.startswith(("summary:", "totals:")):
                    total += int(line.split()[1])
                    break
    return total


def _count_one(
    command: Callable[[int, str], list[str]],
    app: str,
    env: dict[str, str],
    template: Path,
    work: Path,
    name: str,
    path: str,
    requests: int,
) -> int:
    """Instructions of one server's whole life with ``requests`` requests."""
    from helpers import servers

    out = work / f"callgrind-{name}"
    out.mkdir()

    def under_valgrind(port: int, app: str) -> list[str]:
        return [
            "valgrind",
            "--tool=callgrind",
            "--trace-children=yes",
            f"--callgrind-out-file={out}/callgrind.%p",
            *command(port, app),
        ]

    with ExitStack() as stack:
        process = serving.serve_copy(
            stack,
            under_valgrind,
            app,
            template,
            work,
            name,
            {**env, "PYTHONHASHSEED": "0"},
            ready_path=path,
            start_timeout=VALGRIND_TIMEOUT,
            # One readiness request, however long it takes: polls given up
            # on would still be answered, and counted.
            poll_timeout=VALGRIND_TIMEOUT,
        )
        _requests(process.port, path, requests)
        # Stopped here, gently and with time to spare: valgrind writes its
        # counts when each process exits.
        servers.stop_process(process.proc, timeout=VALGRIND_TIMEOUT)
    shutil.rmtree(work / name, ignore_errors=True)
    return _total(out)


def measure(
    server: str, template: Path, work: Path, requests: int, paths: tuple[str, ...]
) -> list[Count]:
    """Count every path of :data:`PATHS` whose label contains one of
    ``paths`` under ``server`` (a key of :data:`SERVERS`).

    :param requests: requests of the longer run (the shorter one makes a
        fifth of them).
    :raises helpers.servers.ServerError: a server did not start.
    :raises SystemExit: a request did not answer 200.
    """
    label, command = SERVERS[server]
    fewer = requests // 5
    counts = []
    for text, path, target in PATHS:
        if not any(wanted in text for wanted in paths):
            continue
        per_request = {}
        for side, app, env in SIDES:
            totals = [
                _count_one(
                    command,
                    app,
                    env,
                    template,
                    work,
                    f"{server}-{side}-{path.strip('/').replace('/', '-')}-{n}",
                    path,
                    n,
                )
                for n in (fewer, requests)
            ]
            per_request[side] = (totals[1] - totals[0]) / (requests - fewer)
        counts.append(
            Count(f"{label}: {text}", target, per_request["off"], per_request["on"])
        )
    return counts


def render(counts: list[Count]) -> str:
    """The table: instructions per request off and on, overhead, target."""
    rows = [
        (
            count.label,
            f"{count.off:,.0f}",
            f"{count.on:,.0f}",
            f"{count.overhead:+.1%}",
            f"<= {count.target:.0%}",
            "yes" if count.overhead <= count.target else "no",
        )
        for count in counts
    ]
    header = ("request", "off instr/req", "on instr/req", "overhead", "target", "met")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(6)]
    lines = [
        "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        )
        for row in [header, tuple("-" * width for width in widths), *rows]
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.served_instructions",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument(
        "--servers",
        default="gunicorn",
        help="gunicorn (default), waitress (its counts vary with thread interleaving)",
    )
    parser.add_argument(
        "--requests", type=int, default=1000, help="requests of the longer run"
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        help="only the paths whose label contains this (repeatable)",
    )
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not installed: apt-get install valgrind")
    if args.requests < 10:
        parser.error("--requests must be at least 10")
    names = [name.strip() for name in args.servers.split(",") if name.strip()]
    unknown = [name for name in names if name not in SERVERS]
    if unknown:
        parser.error(f"unknown server {unknown[0]!r}: use {', '.join(SERVERS)}")
    counts: list[Count] = []
    with tempfile.TemporaryDirectory(prefix="roundup-wsgi-instr-") as tmp:
        work = Path(tmp)
        seed.build_tracker(work / "template", 10, 1024)
        for name in names:
            counts += measure(
                name, work / "template", work, args.requests, tuple(args.only or [""])
            )
    print(
        "Operations on (access log, metrics) vs off under each server, "
        "instructions per request counted by valgrind "
        f"({args.requests} and {args.requests // 5} requests):"
    )
    print(render(counts))


if __name__ == "__main__":
    main()
