"""Scale-out: ``GET /issue1`` and ``GET /issue`` through HAProxy on 1, 2, 3 app hosts.

``python -m benchmarks.cluster [--seconds 10] [--hosts 1,2,3]
[--connections 8] [--issues 100]`` starts a real PostgreSQL, the seeded
benchmark tracker on it (``benchmarks/seed.py``, native indexer as the
recipe says) and the recipe of ``deploy/cluster/`` on loopback (app hosts
on 127.0.1.1-3, each gunicorn with ``deploy/gunicorn.conf.py``: 2 sync
workers; HAProxy on 127.0.0.1 with ``maxconn 2`` per host; see
``tests/helpers/cluster.py``).  For each host count it loads each page
(anonymous) with ``wrk -t1 -c<connections>`` through HAProxy for a fixed
time, and reads around the run the CPU seconds (``/proc/<pid>/stat``
utime + stime, plus the children reaped) of each process group:
PostgreSQL (postmaster and backends), HAProxy, each app host (gunicorn
master and workers) and wrk (``getrusage`` of the reaped child), and the
whole machine's busy time (``/proc/stat``): what is left is other
processes.

Printed: requests per second, the scaling efficiency ``rps_N / (N *
rps_1)``, latency, and each group's share of the machine (CPU seconds over
``cores * wall seconds``) and CPU milliseconds per request, so the table
shows where the CPU went.  The figures are also written to
``test-artifacts/cluster/benchmark.json``.  ``python -m benchmarks
--cluster`` runs the same.  Everything started is stopped by PID.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))

from helpers import pg  # type: ignore[import-not-found]  # noqa: E402
from helpers.cluster import (  # type: ignore[import-not-found]  # noqa: E402
    HOST_ADDRESSES,
    AppHost,
    Balancer,
    cpu_seconds,
    free_port_on,
    process_tree,
)
from helpers.servers import free_port  # type: ignore[import-not-found]  # noqa: E402

from . import load, seed  # noqa: E402

__all__ = [
    "ClusterRow",
    "machine_busy_seconds",
    "main",
    "parse_args",
    "render",
    "scaling_efficiency",
]

ARTIFACTS = ROOT / "test-artifacts" / "cluster"
#: The pages loaded, anonymous: the classic item page and index page.
PATHS = ("issue1", "issue")
#: The process groups whose CPU time is read, in the table's order.
FIXED_GROUPS = ("PostgreSQL", "HAProxy", "wrk")
DATABASE = "roundup_bench_cluster"


@dataclass
class ClusterRow:
    """One measurement: ``hosts`` app hosts behind HAProxy, one page."""

    path: str  #: the URL path loaded, e.g. ``/issue1``
    hosts: int
    rate: float  #: requests per second
    p50_ms: float
    p99_ms: float
    errors: int  #: wrk's non-2xx/3xx answers and socket errors
    requests: int
    wall_s: float  #: seconds between the CPU readings
    cores: int  #: the machine's CPUs (``os.cpu_count()``)
    #: CPU seconds used during the run, by group (``PostgreSQL``,
    #: ``HAProxy``, ``app1``..., ``wrk``).
    cpu_s: dict[str, float] = field(default_factory=dict)
    machine_busy_s: float = 0.0  #: the whole machine's busy CPU seconds
    efficiency: float | None = None  #: ``rps_N / (N * rps_1)``

    def share(self, seconds: float) -> float:
        """``seconds`` of CPU as a fraction of the machine during the run."""
        capacity = self.wall_s * self.cores
        return seconds / capacity if capacity > 0 else 0.0

    @property
    def other_s(self) -> float:
        """Busy CPU seconds of processes outside the groups (other jobs)."""
        return max(0.0, self.machine_busy_s - sum(self.cpu_s.values()))


def _host_list(text: str) -> list[int]:
    try:
        counts = sorted({int(item) for item in text.split(",") if item.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--hosts {text!r}: give host counts separated by commas, e.g. 1,2,3"
        ) from None
    if not counts or counts[0] < 1 or counts[-1] > len(HOST_ADDRESSES):
        raise argparse.ArgumentTypeError(
            f"--hosts {text!r}: each count from 1 to {len(HOST_ADDRESSES)}, e.g. 1,2,3"
        )
    return counts


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number >= 1")
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line of ``python -m benchmarks.cluster``.

    :returns: ``seconds``, ``connections``, ``issues`` (ints >= 1) and
        ``hosts`` (sorted distinct host counts, each 1-3).
    :raises SystemExit: an invalid option (argparse's message names it).
    """
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.cluster",
        description="Requests per second of 1, 2 and 3 app hosts behind "
        "HAProxy on one PostgreSQL (deploy/cluster/ on loopback), with the "
        "CPU each process group used.",
    )
    parser.add_argument(
        "--seconds", type=_positive, default=10, help="wrk seconds per row (10)"
    )
    parser.add_argument(
        "--hosts",
        type=_host_list,
        default=[1, 2, 3],
        help="app host counts, comma-separated (1,2,3)",
    )
    parser.add_argument(
        "--connections",
        type=_positive,
        default=8,
        help="wrk connections, the bounded load (8)",
    )
    parser.add_argument(
        "--issues", type=_positive, default=100, help="issues in the tracker (100)"
    )
    return parser.parse_args(argv)


def scaling_efficiency(rates: Mapping[int, float]) -> dict[int, float | None]:
    """``rps_N / (N * rps_1)`` for each host count ``N`` in ``rates``
    (requests per second by host count): 1.0 is linear scaling.  None for
    every count when 1 host was not measured or served nothing."""
    base = rates.get(1, 0.0)
    return {
        hosts: (rate / (hosts * base) if base > 0 else None)
        for hosts, rate in rates.items()
    }


def machine_busy_seconds(stat: str | None = None) -> float:
    """CPU seconds the whole machine has been busy since boot: the first
    ``cpu`` line of ``/proc/stat`` (``proc(5)``) less idle and iowait
    (``stat``: that file's text, read when None)."""
    if stat is None:
        stat = Path("/proc/stat").read_text()
    line = stat.splitlines()[0].split()
    if line[0] != "cpu":
        raise ValueError(f"/proc/stat starts {line[0]!r}, not 'cpu'")
    ticks = [int(value) for value in line[1:]]
    # user nice system idle iowait irq softirq steal (guest counted in user)
    busy = sum(ticks[:8]) - ticks[3] - ticks[4]
    return busy / os.sysconf("SC_CLK_TCK")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def render(rows: Sequence[ClusterRow]) -> str:
    """The table: one line per row, CPU as % of the machine and ms/request."""
    groups = list(FIXED_GROUPS[:2])
    hosts = max((row.hosts for row in rows), default=0)
    groups += [f"app{n + 1}" for n in range(hosts)] + ["wrk"]
    header = (
        ["page", "hosts", "req/s", "eff.", "p50 ms", "p99 ms", "err"]
        + [f"{name} %" for name in groups]
        + ["other %", "idle %", "app ms/req", "PG ms/req"]
    )
    lines = [header]
    for row in rows:
        app = sum(v for k, v in row.cpu_s.items() if k.startswith("app"))
        per = 1000.0 / max(row.requests, 1)
        busy = row.share(row.machine_busy_s)
        cells = [
            row.path,
            str(row.hosts),
            f"{row.rate:.1f}",
            "-" if row.efficiency is None else f"{row.efficiency:.2f}",
            f"{row.p50_ms:.0f}",
            f"{row.p99_ms:.0f}",
            str(row.errors),
        ]
        cells += [
            f"{100 * row.share(row.cpu_s[name]):.0f}" if name in row.cpu_s else "-"
            for name in groups
        ]
        cells += [
            f"{100 * row.share(row.other_s):.0f}",
            f"{100 * max(0.0, 1 - busy):.0f}",
            f"{app * per:.1f}",
            f"{row.cpu_s.get('PostgreSQL', 0.0) * per:.1f}",
        ]
        lines.append(cells)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for number, line in enumerate(lines):
        out.append(
            "  ".join(
                cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
                for i, cell in enumerate(line)
            ).rstrip()
        )
        if number == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def log(message: str) -> None:
    print(f"[cluster] {message}", file=sys.stderr, flush=True)


def build_tracker(server: pg.PostgresServer, home: Path, issues: int, web: str) -> None:
    """The seeded benchmark tracker at ``home`` on ``server``, with the
    native indexer (the recipe's) and ``web`` as its URL (HAProxy's)."""
    from roundup.configuration import CoreConfig

    settings: dict[str, str | int] = dict(server.rdbms_settings(DATABASE))
    settings["indexer"] = "native"
    seed.build_tracker(home, issues, 1024, backend="postgresql", settings=settings)
    config = CoreConfig(str(home))
    config["TRACKER_WEB"] = web
    config.save(str(home / "config.ini"))


def _check_page(url: str) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=60) as answer:
        if answer.status != 200:
            raise RuntimeError(f"{url} answered {answer.status}, not 200")


def measure(
    path: str,
    hosts: Sequence[AppHost],
    balancer: Balancer,
    postmaster: int,
    args: argparse.Namespace,
    wrk: str,
) -> ClusterRow:
    """Warm up, then one wrk run on ``path`` through ``balancer`` with the
    CPU time of every group read around it."""
    url = balancer.url + path
    _check_page(url)
    load.run_wrk(url, seconds=2, connections=args.connections, wrk=wrk)

    def groups() -> dict[str, float]:
        # A tree's reaped children count in their parent (PostgreSQL's
        # backends, gunicorn workers that were replaced).
        cpu = {
            "PostgreSQL": cpu_seconds(process_tree(postmaster)),
            "HAProxy": cpu_seconds(
                process_tree(balancer.proc.pid) if balancer.proc else []
            ),
        }
        for host in hosts:
            cpu[host.name] = cpu_seconds(host.pids())
        cpu["wrk"] = _children_cpu()  # wrk is the only child reaped meanwhile
        return cpu

    before, busy_before, started = groups(), machine_busy_seconds(), time.monotonic()
    result = load.run_wrk(
        url, seconds=args.seconds, connections=args.connections, wrk=wrk
    )
    after, busy_after, wall = (
        groups(),
        machine_busy_seconds(),
        time.monotonic() - started,
    )
    return ClusterRow(
        path="/" + path,
        hosts=len(hosts),
        rate=round(result.rate, 1),
        p50_ms=round(result.p50_ms, 1),
        p99_ms=round(result.p99_ms, 1),
        errors=result.errors,
        requests=result.requests,
        wall_s=round(wall, 3),
        cores=os.cpu_count() or 1,
        cpu_s={name: round(after[name] - before[name], 3) for name in after},
        machine_busy_s=round(busy_after - busy_before, 3),
    )


def cpu_model() -> str:
    """The CPU's ``model name`` from ``/proc/cpuinfo`` ("unknown" if none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def run(args: argparse.Namespace) -> list[ClusterRow]:
    """Measure every host count and page; print and save the table."""
    wrk = load.find_wrk()
    haproxy = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin")
    if haproxy is None:
        raise SystemExit(
            "benchmarks: haproxy not found; install it (Debian: apt-get install "
            "haproxy)"
        )
    started = time.monotonic()
    rows: list[ClusterRow] = []
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rw-c-")))
        server = stack.enter_context(pg.running_postgres(work / "pg"))
        assert server.proc is not None
        balancer_port = free_port()
        home = work / "shared" / "tracker"
        log(f"building the tracker on PostgreSQL: {args.issues} issues")
        build_tracker(server, home, args.issues, f"http://127.0.0.1:{balancer_port}/")
        port = free_port_on(HOST_ADDRESSES)
        for count in args.hosts:
            # finally: each host and HAProxy stopped by PID (ExitStack).
            with ExitStack() as hosts_stack:
                hosts = [
                    AppHost(f"app{n + 1}", address, port, home, work / "hosts")
                    for n, address in enumerate(HOST_ADDRESSES[:count])
                ]
                for host in hosts:
                    hosts_stack.callback(host.cleanup)
                    host.start(wait=False)
                for host in hosts:
                    host.wait_ready()
                balancer = Balancer(haproxy, hosts, balancer_port, work / f"ha{count}")
                hosts_stack.callback(balancer.stop)
                balancer.start()
                for path in PATHS:
                    log(f"{count} host(s) through HAProxy: GET /{path}")
                    rows.append(
                        measure(path, hosts, balancer, server.proc.pid, args, wrk)
                    )
    for path in PATHS:
        mine = [row for row in rows if row.path == "/" + path]
        efficiency = scaling_efficiency({row.hosts: row.rate for row in mine})
        for row in mine:
            row.efficiency = efficiency[row.hosts]
    rows.sort(key=lambda row: (PATHS.index(row.path[1:]), row.hosts))
    cores = os.cpu_count() or 1
    print(
        f"roundup-wsgi cluster benchmark: {args.issues} issues on PostgreSQL, "
        f"wrk -t1 -c{args.connections}, {args.seconds} s per row; each host "
        f"gunicorn with 2 sync workers behind HAProxy (maxconn 2 per host); "
        f"{cores} CPUs ({cpu_model()}) shared by every process; "
        f"{time.monotonic() - started:.0f} s"
    )
    print(
        "CPU columns: % of the machine (cores x wall seconds) during the run; "
        "eff. = rps_N / (N * rps_1); other = busy CPU of processes outside "
        "the cluster"
    )
    print(render(rows))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "benchmark.json").write_text(
        json.dumps(
            {
                "cores": cores,
                "cpu_model": cpu_model(),
                "seconds": args.seconds,
                "connections": args.connections,
                "issues": args.issues,
                "rows": [asdict(row) for row in rows],
            },
            indent=2,
        )
    )
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m benchmarks.cluster``."""
    run(parse_args(argv))


if __name__ == "__main__":
    main()
