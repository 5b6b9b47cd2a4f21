"""Roundup's own WSGI dispatcher against roundup_wsgi's, side by side.

Run from the repository root, with the test extras installed and Debian's
wrk::

    python -m benchmarks [--issues 500] [--quick]

It builds a seeded tracker (``benchmarks/seed.py``: ``--issues`` issues with
messages and files, and a 50 MiB attachment), then for each server
(waitress with 4 threads, gunicorn with 2 sync workers) starts four
servers on 127.0.0.1, each on its own copy of the tracker: Roundup's stock
``roundup.cgi.wsgi_handler.RequestDispatcher`` (``tests/apps/stock_app.py``),
ours (``roundup_wsgi.app:application``, default options), ours with
``reuse_db`` off (``ROUNDUP_WSGI_REUSE_DB=false``: a database opened per
request, as Roundup does) and a hello-world application (the server's
ceiling).  It measures, for stock and ours in turn:

* the 50 MiB attachment, and a 50 MiB text attachment asked for with
  ``Accept-Encoding: gzip`` (decoded and checked): time to the first body
  byte and total time of one download, and the growth of the server's peak
  RSS with one and with four concurrent downloads (after a warm-up);
* throughput (req/s) and latency (p50, p99) with wrk, alternating stock and
  ours for each request (who goes first alternates by request and round),
  for ``GET /issue``, ``/issue1``, ``/@@file/style.css`` (also with a
  browser's ``Accept-Encoding: gzip, deflate, br``, and that rate of ours
  against the hello-world ceiling measured right before or after it, with
  both CPU times per request), REST ``GET`` (``/rest/data/issue/1``, and
  the issue index ``/rest/data/issue``)
  with basic auth and with a JWT (obtained from the tracker's
  ``POST /rest/jwt/issue``), and a REST ``POST`` creating an issue (JWT);
  the same for ours with ``reuse_db`` off;
* the server's CPU time per request (user + system of the server process
  and its workers, from ``/proc``, over each wrk run, divided by the
  requests answered): less sensitive than req/s to other load on the
  machine, since it counts only what the server itself spent.

Last, the cost of the access log, the metrics and the health checks per
request, on and off (``benchmarks/operations.py``): under each server (the
server processes' CPU time per request, as above, with
``benchmarks.bare:application`` as "off"), and in one process (the
application's own CPU time, without the server's).

It prints three tables, and with ``--instructions`` a fourth: the access
log and metrics under gunicorn counted in instructions by valgrind
(``benchmarks/served_instructions.py``), the measure their targets are
judged by, since instruction counts do not move with the machine's other
load.  ``--quick`` (1 round of 2 s per measurement) takes
under 2 minutes; the default (3 rounds of 10 s) about 15.  ``--only TEXT``
measures only the requests whose label contains TEXT (``--only style.css``:
the static-file rows and the ceiling), without the downloads and the
operations table.

``--postgresql`` measures the tracker on a throw-away PostgreSQL instead
(``benchmarks/pg_rows.py``): ``GET /issue``, ``/issue1``, REST ``GET``
(JWT) and a form ``POST`` creating an issue, stock, ours and ours with
``reuse_db`` off on one database; then the SQL statements and connections
per warm request, and what opening Roundup's database costs per request.

``--cluster`` measures scale-out instead (``benchmarks/cluster.py``):
``GET /issue1`` through HAProxy with 1, 2 and 3 app hosts on PostgreSQL,
with the CPU milliseconds per request of hosts, PostgreSQL and HAProxy.
"""

from __future__ import annotations

import argparse
import base64
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from helpers import servers  # noqa: E402 - the test suite's server harness (tests/helpers/servers.py)

from . import load, operations, pg_rows, seed, served_instructions, serving  # noqa: E402

HELLO_APP = "benchmarks.hello:application"
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
ADMIN_BASIC = (
    "Basic " + base64.b64encode(f"admin:{seed.ADMIN_PASSWORD}".encode()).decode()
)
MIB = 1024 * 1024
#: Requests of the longer valgrind run of ``--instructions`` (the shorter
#: makes a fifth of them).
INSTRUCTION_REQUESTS = 1000

#: Server name -> (label, command builder).
SERVER_KINDS: dict[str, tuple[str, Callable[[int, str], list[str]]]] = {
    "waitress": ("waitress, 4 threads", servers.waitress_command),
    "gunicorn": ("gunicorn, 2 sync workers", servers.gunicorn_command),
}


@dataclass
class Served:
    """One running server: its process, base URL and request headers."""

    name: str
    process: servers.ServerProcess
    token: str = ""
    #: ``Cookie`` of an admin session (the form POST's).
    cookie: str = ""

    @property
    def url(self) -> str:
        return self.process.url

    @property
    def pid(self) -> int:
        assert self.process.proc is not None
        return self.process.proc.pid

    def rest_headers(self, auth: str) -> dict[str, str]:
        """Headers a REST client sends for a write (Roundup's CSRF checks)."""
        return {
            "Authorization": auth,
            "Origin": self.url.rstrip("/"),
            "Referer": self.url,
            "X-Requested-With": "rest",
            "Content-Type": "application/json",
        }


@dataclass
class Request:
    """One benchmarked request: what wrk sends to a server."""

    label: str
    path: str
    method: str = "GET"
    auth: str = ""  # "", "basic", "jwt" or "cookie" (a form POST)
    body: str | None = None
    status: int = 200
    #: Other request headers (a browser's ``Accept-Encoding``).
    extra: dict[str, str] = field(default_factory=dict)

    def headers(self, server: Served) -> dict[str, str]:
        if not self.auth:
            return dict(self.extra)
        if self.auth == "cookie":
            return {**pg_rows.form_headers(server.url, server.cookie), **self.extra}
        auth = ADMIN_BASIC if self.auth == "basic" else f"Bearer {server.token}"
        if self.method == "POST":
            return {**server.rest_headers(auth), **self.extra}
        return {"Authorization": auth, **self.extra}


#: What a browser sends (Chrome, Firefox): stock Roundup compresses
#: style.css on every request, ours once (roundup_wsgi.compression).
BROWSER_ACCEPT_ENCODING = {"Accept-Encoding": "gzip, deflate, br"}
STYLE_BROWSER = "GET /@@file/style.css, browser Accept-Encoding"

REQUESTS = [
    Request("GET /issue", "issue"),
    Request("GET /issue1", "issue1"),
    Request("GET /@@file/style.css", "@@file/style.css"),
    Request(STYLE_BROWSER, "@@file/style.css", extra=BROWSER_ACCEPT_ENCODING),
    Request("REST GET, basic auth", "rest/data/issue/1", auth="basic"),
    # The issue index of the REST API, as an API client polls it (issue 22):
    # one Basic auth client on each wrk connection, every request after the
    # check() below is its second or later.
    Request("REST GET /rest/data/issue, basic auth", "rest/data/issue", auth="basic"),
    Request("REST GET, JWT", "rest/data/issue/1", auth="jwt"),
    Request(
        "REST POST new issue, JWT",
        "rest/data/issue",
        method="POST",
        auth="jwt",
        body=json.dumps({"title": "benchmark issue"}),
        status=201,
    ),
]


#: The rows of ``--postgresql`` (JWT: Basic auth would measure PBKDF2).
PG_REQUESTS = [
    Request("PostgreSQL: GET /issue", "issue"),
    Request("PostgreSQL: GET /issue1", "issue1"),
    Request("PostgreSQL: REST GET, JWT", "rest/data/issue/1", auth="jwt"),
    Request(
        "PostgreSQL: form POST new issue",
        "issue",
        method="POST",
        auth="cookie",
        body=pg_rows.FORM_BODY,
        # urllib follows Roundup's 302 to the new issue; wrk does not.
        status=200,
    ),
]


@dataclass
class Row:
    """One line of the table: a measurement for stock and for ours."""

    server: str
    label: str
    unit: str
    stock: list[float] = field(default_factory=list)
    ours: list[float] = field(default_factory=list)
    #: ours with reuse_db off
    off: list[float] = field(default_factory=list)
    #: CPU ms per request by side.
    cpu: dict[str, list[float]] = field(default_factory=dict)
    latency: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    #: wrk's error count (non-2xx/3xx answers, socket errors, timeouts) by side.
    errors: dict[str, int] = field(default_factory=dict)


def check(server: Served, request: Request) -> None:
    """Send ``request`` once and check its status, so that the table never
    reports the speed of an error page."""
    data = request.body.encode() if request.body is not None else None
    req = urllib.request.Request(
        server.url + request.path,
        data=data,
        method=request.method,
        headers=request.headers(server),
    )
    try:
        with OPENER.open(req, timeout=120) as response:
            status = response.status
            response.read()
    except urllib.error.HTTPError as error:
        status = error.code
        detail = error.read()[:300]
    else:
        detail = b""
    if status != request.status:
        raise SystemExit(
            f"benchmarks: {request.method} {server.url}{request.path} on "
            f"{server.name} answered {status}, expected {request.status}: {detail!r}"
        )


def get_token(server: Served) -> str:
    """A JWT for ``admin`` from the tracker's ``POST /rest/jwt/issue``."""
    req = urllib.request.Request(
        server.url + "rest/jwt/issue",
        data=b"{}",
        method="POST",
        headers=server.rest_headers(ADMIN_BASIC),
    )
    with OPENER.open(req, timeout=120) as response:
        return str(json.loads(response.read())["data"]["jwt"])


@contextmanager
def started(
    kind: str, template: Path, work: Path
) -> Iterator[tuple[Served, Served, Served, Served]]:
    """Start stock, ours, ours with reuse_db off and hello under ``kind``;
    stop them on exit."""
    command = SERVER_KINDS[kind][1]
    with ExitStack() as stack:
        result = []
        for name, app in (
            ("stock", servers.STOCK_APP),
            ("ours", servers.OUR_APP),
            ("off", servers.OUR_APP),
            ("hello", HELLO_APP),
        ):
            process = serving.serve_copy(
                stack,
                command,
                app,
                template,
                work,
                f"{kind}-{name}",
                {"ROUNDUP_WSGI_REUSE_DB": "false" if name == "off" else "true"},
                ready_path="/" if name == "hello" else "/@@file/style.css",
            )
            result.append(Served(name, process))
        yield result[0], result[1], result[2], result[3]


def measure_downloads(
    server: Served, path: str, size: int, headers: dict[str, str] | None = None
) -> tuple[float, float, float, float]:
    """Download ``path`` once, then four times at once.

    :param headers: request headers (``Accept-Encoding: gzip``: the answer
        is decoded, and its decoded size checked).
    :returns: ``(TTFB s, total s, peak RSS growth MiB for 1, for 4)``.
    """
    for warm in ("issue", "issue1", "@@file/style.css"):
        OPENER.open(server.url + warm, timeout=120).read()
    load.reset_peak_rss(server.pid)  # an earlier download's peak would hide this
    before = load.peak_rss_kib(server.pid)
    ttfb, total, got = load.timed_download(server.url + path, headers=headers)
    if got != size:
        raise SystemExit(f"benchmarks: {server.name} sent {got} of {size} bytes")
    one = (load.peak_rss_kib(server.pid) - before) / 1024
    threads = [
        threading.Thread(
            target=load.timed_download,
            args=(server.url + path,),
            kwargs={"headers": headers},
        )
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    four = (load.peak_rss_kib(server.pid) - before) / 1024
    return ttfb, total, one, four


def bench_server(
    kind: str, template: Path, work: Path, args: argparse.Namespace, wrk: str
) -> list[Row]:
    """All the rows for one server kind."""
    label = SERVER_KINDS[kind][0]
    rows: list[Row] = []
    with started(kind, template, work) as (stock, ours, off, hello):
        log(f"{label}: servers up")
        size = args.big_mib * MIB
        down: list[Row] = []
        downloads = (
            []
            if args.only or args.postgresql
            else [
                (f"{args.big_mib} MiB file", args.big_path, None),
                (
                    f"{args.big_mib} MiB text file, gzip",
                    args.text_path,
                    {"Accept-Encoding": "gzip"},
                ),
            ]
        )
        for title, path, headers in downloads:
            rows_here = [
                Row(label, f"{title}: {what}", unit)
                for what, unit in (
                    ("time to first byte", "ms"),
                    ("total time", "s"),
                    ("peak RSS growth, 1 download", "MiB"),
                    ("peak RSS growth, 4 at once", "MiB"),
                )
            ]
            for server in (stock, ours):
                measured = measure_downloads(server, path, size, headers)
                ttfb, total, one, four = measured
                values = (ttfb * 1e3, total, one, four)
                for row, value in zip(rows_here, values, strict=True):
                    getattr(row, server.name).append(value)
            down += rows_here
        if downloads:
            log(f"{label}: downloads measured")

        requests = [
            r for r in args.request_list if not args.only or args.only in r.label
        ]
        for server in (stock, ours, off):
            server.token = get_token(server)
            if any(request.auth == "cookie" for request in requests):
                server.cookie = pg_rows.login_cookie(server.url)
        ceiling = Row(label, "hello world (ceiling, no Roundup)", "req/s")
        rows.append(ceiling)
        table = [Row(label, request.label, "req/s") for request in requests]
        for request in requests:
            for server in (stock, ours, off):
                check(server, request)
        # ours for style.css as a browser asks, against the server's ceiling:
        # hello-world measured right before or after ours in that row (by
        # round), so that a drift in the machine's load between the two
        # hardly shows; its "stock" column (and CPU) is hello-world's.
        near = Row(
            label,
            "style.css, browser Accept-Encoding: ours vs hello-world ceiling",
            "req/s",
        )
        for round_ in range(args.rounds):
            result = load.run_wrk(
                hello.url, seconds=args.seconds, connections=args.connections, wrk=wrk
            )
            ceiling.stock.append(result.rate)
            ceiling.ours.append(result.rate)
            for name in ("stock", "ours"):
                ceiling.latency.setdefault(name, []).append(
                    (result.p50_ms, result.p99_ms)
                )
            for number, (request, row) in enumerate(zip(requests, table, strict=True)):
                # Who goes first alternates by request and by round, so a
                # drift in the machine's load favours neither.
                order = [stock, ours, off]
                shift = (round_ + number) % 3
                order = order[shift:] + order[:shift]
                if request.label == STYLE_BROWSER:
                    at = order.index(ours) + (round_ % 2)
                    order.insert(at, hello)
                for server in order:
                    cpu_before = load.cpu_seconds(server.pid)
                    result = load.run_wrk(
                        server.url + request.path,
                        seconds=args.seconds,
                        connections=args.connections,
                        method=request.method,
                        headers=request.headers(server),
                        body=request.body,
                        wrk=wrk,
                    )
                    cpu = load.cpu_seconds(server.pid) - cpu_before
                    cpu_ms = cpu * 1e3 / max(result.requests, 1)
                    if server is hello or (
                        server is ours and row.label == STYLE_BROWSER
                    ):
                        side = "stock" if server is hello else "ours"
                        getattr(near, side).append(result.rate)
                        near.cpu.setdefault(side, []).append(cpu_ms)
                        if server is hello:
                            continue
                    getattr(row, server.name).append(result.rate)
                    row.cpu.setdefault(server.name, []).append(cpu_ms)
                    row.latency.setdefault(server.name, []).append(
                        (result.p50_ms, result.p99_ms)
                    )
                    row.errors[server.name] = (
                        row.errors.get(server.name, 0) + result.errors
                    )
            log(f"{label}: round {round_ + 1} of {args.rounds} done")
        rows.extend(table)
        if near.ours:
            rows.append(near)
        rows.extend(down)
    return rows


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def fmt(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def ratio_text(ratio: float) -> str:
    """``1.05x``; small ratios with three decimals (``0.004x``)."""
    return f"{ratio:.3f}x" if ratio < 0.1 else f"{ratio:.2f}x"


def render(rows: list[Row]) -> str:
    """The table: one line per measurement, stock, ours and ours with
    reuse_db off side by side."""
    header = (
        "server",
        "measurement",
        "unit",
        "stock",
        "ours",
        "ours/stock",
        "reuse off",
        "off/stock",
        "CPU ms/req stock/ours/off",
        "CPU stock/ours",
        "p50 ms stock/ours/off",
        "p99 ms stock/ours/off",
    )
    sides = ("stock", "ours", "off")
    lines: list[tuple[str, ...]] = [header]
    for row in rows:
        stock = statistics.mean(row.stock) if row.stock else float("nan")
        ours = statistics.mean(row.ours) if row.ours else float("nan")
        off = statistics.mean(row.off) if row.off else float("nan")
        is_ceiling = row.label.startswith("hello")
        ratio = "-" if is_ceiling or not stock else ratio_text(ours / stock)
        off_ratio = (
            "-" if is_ceiling or not row.off or not stock else ratio_text(off / stock)
        )
        p50 = p99 = cpu = cpu_ratio = ""
        if row.latency:
            parts50, parts99 = [], []
            for name in sides:
                values = row.latency.get(name)
                if not values:
                    parts50.append("-")
                    parts99.append("-")
                    continue
                parts50.append(fmt(statistics.median(v[0] for v in values)))
                parts99.append(fmt(statistics.median(v[1] for v in values)))
            p50, p99 = "/".join(parts50), "/".join(parts99)
        if row.cpu:
            cpu = "/".join(
                fmt(statistics.median(row.cpu[name])) if name in row.cpu else "-"
                for name in sides
            )
            if "stock" in row.cpu and "ours" in row.cpu:
                ours_cpu = statistics.median(row.cpu["ours"])
                if ours_cpu:
                    cpu_ratio = ratio_text(
                        statistics.median(row.cpu["stock"]) / ours_cpu
                    )
        errors = ", ".join(f"{n} {side}" for side, n in row.errors.items() if n)
        label = row.label + (f" (errors: {errors})" if errors else "")
        lines.append(
            (
                row.server,
                label,
                row.unit.strip(),
                fmt(stock),
                fmt(ours),
                ratio,
                "-" if not row.off else fmt(off),
                off_ratio,
                cpu,
                cpu_ratio,
                p50,
                p99,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for number, line in enumerate(lines):
        cells = [
            cell.ljust(widths[i]) if i < 3 else cell.rjust(widths[i])
            for i, cell in enumerate(line)
        ]
        out.append("  ".join(cells).rstrip())
        if number == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--issues", type=int, default=500, help="issues (500)")
    parser.add_argument(
        "--quick", action="store_true", help="1 round of 2 s each: under 2 minutes"
    )
    parser.add_argument("--rounds", type=int, help="rounds per request (3)")
    parser.add_argument("--seconds", type=int, help="seconds per wrk run (10)")
    parser.add_argument(
        "--connections", type=int, default=4, help="wrk connections (4)"
    )
    parser.add_argument("--big-mib", type=int, default=50, help="attachment MiB (50)")
    parser.add_argument(
        "--servers",
        default="waitress,gunicorn",
        help="comma-separated: waitress,gunicorn",
    )
    parser.add_argument(
        "--only",
        default="",
        metavar="TEXT",
        help="only the requests whose label contains TEXT (e.g. style.css), "
        "without the downloads and the operations table",
    )
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="also count with valgrind what the access log and metrics cost "
        "gunicorn per request (benchmarks.served_instructions; about 15 "
        "minutes more)",
    )
    parser.add_argument(
        "--postgresql",
        action="store_true",
        help="instead: the tracker on a throw-away PostgreSQL (GET /issue, "
        "/issue1, REST GET, a form POST; SQL statements per request; the "
        "cost of opening the database) (needs PostgreSQL)",
    )
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="instead: GET /issue1 and /issue through HAProxy with 1, 2 and 3 "
        "app hosts (benchmarks.cluster; needs haproxy and PostgreSQL)",
    )
    parser.add_argument(
        "--cluster-connections",
        type=int,
        default=8,
        help="wrk connections with --cluster (8)",
    )
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.seconds = args.seconds or (2 if args.quick else 10)
    args.server_list = [
        name.strip() for name in args.servers.split(",") if name.strip()
    ]
    unknown = [name for name in args.server_list if name not in SERVER_KINDS]
    if unknown:
        parser.error(f"unknown server {unknown[0]!r}: use {', '.join(SERVER_KINDS)}")
    if args.issues < 1:
        parser.error("--issues must be at least 1")
    if args.instructions and shutil.which("valgrind") is None:
        parser.error("--instructions needs valgrind: apt-get install valgrind")
    args.request_list = PG_REQUESTS if args.postgresql else REQUESTS
    if args.only and not any(
        args.only in request.label for request in args.request_list
    ):
        parser.error(
            f"--only {args.only!r} matches no request: use part of one of "
            + ", ".join(repr(request.label) for request in args.request_list)
        )
    return args


def main(argv: list[str] | None = None) -> None:
    """Build the tracker, run every measurement, print the table."""
    args = parse_args(argv)
    if args.cluster:
        from . import cluster

        cluster.main(
            [
                "--seconds",
                str(args.seconds),
                "--connections",
                str(args.cluster_connections),
            ]
        )
        return
    wrk = load.find_wrk()
    try:
        import jwt  # noqa: F401 - Roundup needs it for bearer tokens
    except ImportError:
        raise SystemExit(
            "benchmarks: pyjwt is missing: pip install '.[test]' (or pip install pyjwt)"
        ) from None
    started_at = time.monotonic()
    if args.postgresql:
        run_postgresql(args, wrk, started_at)
        return
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="roundup-wsgi-bench-") as tmp:
        work = Path(tmp)
        template = work / "template"
        log(f"building the tracker: {args.issues} issues, {args.big_mib} MiB file")
        args.big_path = seed.build_tracker(template, args.issues, args.big_mib * MIB)
        args.text_path = seed.add_text_file(template, args.big_mib * MIB)
        for kind in args.server_list:
            rows += bench_server(kind, template, work, args, wrk)
        ops_rounds = 12 if args.quick else 20
        ops_seconds = 0.5 if args.quick else 1.5
        overheads = []
        served: list[operations.Overhead] = []
        if not args.only:
            for kind in args.server_list:
                log(f"operations on vs off, {SERVER_KINDS[kind][0]}")
                served += operations.measure_served(
                    SERVER_KINDS[kind][0],
                    SERVER_KINDS[kind][1],
                    template,
                    work,
                    args.rounds,
                    args.seconds,
                    wrk,
                )
            log("operations on vs off, in process")
            overheads = operations.measure(template, work, ops_rounds, ops_seconds)
        counts: list[served_instructions.Count] = []
        if args.instructions:
            log("operations on vs off under gunicorn, counted by valgrind")
            counts = served_instructions.measure(
                "gunicorn", template, work, INSTRUCTION_REQUESTS, (args.only,)
            )
    print(
        f"roundup-wsgi benchmark: {args.issues} issues, {args.rounds} round(s) of "
        f"{args.seconds} s per measurement, wrk -t1 -c{args.connections}; "
        f"{time.monotonic() - started_at:.0f} s"
    )
    print(render(rows))
    if counts:
        print()
        print(
            "Operations on (access log, metrics) vs off under gunicorn, "
            "instructions per request counted by valgrind "
            f"({INSTRUCTION_REQUESTS} and {INSTRUCTION_REQUESTS // 5} requests):"
        )
        print(served_instructions.render(counts))
    if not overheads:
        return
    print()
    print(
        "Operations on (access log, metrics, /-/ready every "
        f"{operations.READY_EVERY:.0f} s) vs off: CPU per request in one process, "
        f"{ops_rounds} rounds of {ops_seconds:g} s (median of each round's on/off)"
    )
    print(operations.render(overheads))
    print()
    print(
        "Operations on (access log to a file, metrics, /-/ready every "
        f"{operations.READY_EVERY:.0f} s) vs off (a bare dispatcher) under each "
        f"server: CPU per request of the server's processes, {args.rounds} "
        f"round(s) of {args.seconds} s (median of each round's on/off)"
    )
    print(operations.render(served))


def run_postgresql(args: argparse.Namespace, wrk: str, started_at: float) -> None:
    """``--postgresql``: the rows of :data:`PG_REQUESTS` on one PostgreSQL,
    then the statements per request and the cost of opening the database
    (``benchmarks/pg_rows.py``)."""
    from helpers import pg

    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="roundup-wsgi-bench-pg-") as tmp:
        work = Path(tmp)
        template = work / "template"
        with pg.running_postgres(work / "pg-log") as postgres:
            log(f"building the tracker on PostgreSQL: {args.issues} issues")
            pg_rows.build_template(postgres, template, args.issues)
            for kind in args.server_list:
                rows += bench_server(kind, template, work, args, wrk)
            log("counting statements per request, in process")
            counts = pg_rows.count_statements(template, ["issue", "issue1"])
            opening = pg_rows.opening_cost(template)
    print(
        f"roundup-wsgi benchmark on PostgreSQL: {args.issues} issues, "
        f"{args.rounds} round(s) of {args.seconds} s per measurement, wrk -t1 "
        f"-c{args.connections}; {time.monotonic() - started_at:.0f} s"
    )
    print(render(rows))
    print()
    print(pg_rows.render_counts(counts))
    print()
    print(
        "Opening Roundup's database as stock does per request (ours keeps it "
        "per thread): "
        + ", ".join(f"{name} {value:.2f}" for name, value in opening.items())
    )


if __name__ == "__main__":
    main()
