"""Scale-out: ``GET /issue1`` through HAProxy with 1, 2 and 3 app hosts.

``python -m benchmarks --cluster [--seconds 10] [--cluster-connections 8]``
starts a real PostgreSQL, a tracker on it (native indexer, as the recipe
says), and the recipe of ``deploy/cluster/`` on loopback (app hosts on
127.0.1.1-3, each gunicorn with 2 sync workers; HAProxy on 127.0.0.1; see
``tests/helpers/cluster.py``).  For 1, 2 and 3 hosts in turn it loads
``/issue1`` (anonymous, the classic item page) with wrk through HAProxy and
reads the CPU time the processes used during the run from ``/proc``: the
app hosts (gunicorn masters and workers), PostgreSQL (postmaster and its
backends) and HAProxy.  A last row loads one host directly, without
HAProxy.

Printed per row: req/s, p50/p99 latency, and CPU milliseconds per request
for the app hosts, PostgreSQL and HAProxy.  ``docs/capacity.rst`` turns
those into hosts needed for a load.  The machine's cores bound the curve:
with 2 cores, 2 hosts (4 workers) already saturate it and a 3rd adds
nothing.  The figures are also written to
``test-artifacts/cluster/benchmark.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from helpers import pg  # noqa: E402 - tests/helpers (PostgreSQL, the cluster)
from helpers.cluster import (  # noqa: E402
    HOST_ADDRESSES,
    AppHost,
    Balancer,
    cpu_seconds,
    free_port_on,
    process_tree,
)
from helpers.servers import free_port  # noqa: E402

from . import load  # noqa: E402

ARTIFACTS = ROOT / "test-artifacts" / "cluster"
ADMIN_PASSWORD = "admin-secret"


@dataclass
class ClusterRow:
    """One measurement: ``hosts`` app hosts, through HAProxy or direct."""

    setup: str
    hosts: int
    rate: float  #: requests per second
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int
    app_cpu_ms: float  #: CPU ms per request in the app hosts
    pg_cpu_ms: float  #: CPU ms per request in PostgreSQL
    haproxy_cpu_ms: float  #: CPU ms per request in HAProxy


def log(message: str) -> None:
    print(f"[cluster] {message}", file=sys.stderr, flush=True)


def make_tracker(server: pg.PostgresServer, home: Path, web: str) -> Path:
    """A PostgreSQL tracker with issue1 (a title and one message)."""
    from roundup import instance

    pg.create_pg_tracker(
        server,
        home,
        "roundup_bench_cluster",
        admin_password=ADMIN_PASSWORD,
        web=web,
        settings={"indexer": "native"},
    )
    db = instance.open(str(home)).open("admin")
    try:
        msg = db.msg.create(content="The first message of issue1.", author="1")
        db.issue.create(title="Benchmark issue one", messages=[msg], priority="3")
        db.commit()
    finally:
        db.close()
    return home


def connection_costs(
    server: pg.PostgresServer, home: Path, rounds: int = 30
) -> dict[str, float]:
    """PostgreSQL CPU milliseconds of one connection (``psycopg2.connect``
    and close) and of one Roundup database open and close (connect plus
    what Roundup reads when it opens the database), each averaged over
    ``rounds``; Roundup does the latter for every request."""
    import psycopg2
    from roundup import instance

    assert server.proc is not None
    postmaster = server.proc.pid
    settings = server.rdbms_settings("roundup_bench_cluster")
    tracker = instance.open(str(home))

    def pg_cpu() -> float:
        return cpu_seconds(process_tree(postmaster))

    before = pg_cpu()
    for _ in range(rounds):
        psycopg2.connect(
            host=settings["rdbms_host"],
            port=settings["rdbms_port"],
            user=settings["rdbms_user"],
            dbname=settings["rdbms_name"],
        ).close()
    middle = pg_cpu()
    for _ in range(rounds):
        tracker.open("anonymous").close()
    after = pg_cpu()
    return {
        "pg_cpu_ms_per_connection": round((middle - before) * 1000 / rounds, 2),
        "pg_cpu_ms_per_roundup_open": round((after - middle) * 1000 / rounds, 2),
    }


def measure(
    setup: str,
    hosts: list[AppHost],
    url: str,
    server: pg.PostgresServer,
    balancer: Balancer | None,
    args: Any,
    wrk: str,
) -> ClusterRow:
    """Warm up, then one wrk run on ``url`` with the CPU time read around it."""
    load.run_wrk(url, seconds=2, connections=args.cluster_connections, wrk=wrk)

    def app_pids() -> list[int]:
        return [pid for host in hosts for pid in host.pids()]

    assert server.proc is not None
    postmaster = server.proc.pid
    ha_pids = [balancer.proc.pid] if balancer and balancer.proc else []

    def cpu() -> tuple[float, float, float]:
        # Roundup opens a PostgreSQL connection per request: the backends
        # it used and closed count in the postmaster's reaped-children time.
        return (
            cpu_seconds(app_pids()),
            cpu_seconds(process_tree(postmaster)),
            cpu_seconds(ha_pids),
        )

    before = cpu()
    result = load.run_wrk(
        url, seconds=args.seconds, connections=args.cluster_connections, wrk=wrk
    )
    after = cpu()
    per = 1000.0 / max(result.requests, 1)
    return ClusterRow(
        setup=setup,
        hosts=len(hosts),
        rate=round(result.rate, 1),
        p50_ms=round(result.p50_ms, 1),
        p99_ms=round(result.p99_ms, 1),
        errors=result.errors,
        requests=result.requests,
        app_cpu_ms=round((after[0] - before[0]) * per, 2),
        pg_cpu_ms=round((after[1] - before[1]) * per, 2),
        haproxy_cpu_ms=round((after[2] - before[2]) * per, 2),
    )


def render(rows: list[ClusterRow]) -> str:
    header = (
        "setup",
        "req/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "app CPU ms/req",
        "PostgreSQL CPU ms/req",
        "HAProxy CPU ms/req",
    )
    lines = [header] + [
        (
            r.setup,
            f"{r.rate:.1f}",
            f"{r.p50_ms:.1f}",
            f"{r.p99_ms:.1f}",
            str(r.errors),
            f"{r.app_cpu_ms:.2f}",
            f"{r.pg_cpu_ms:.2f}",
            f"{r.haproxy_cpu_ms:.2f}",
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for number, line in enumerate(lines):
        cells = [
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
            for i, cell in enumerate(line)
        ]
        out.append("  ".join(cells).rstrip())
        if number == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def run(args: Any) -> None:
    """Measure and print the table (``python -m benchmarks --cluster``)."""
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
        balancer_port = free_port()
        web = f"http://127.0.0.1:{balancer_port}/"
        home = make_tracker(server, work / "shared" / "tracker", web)
        port = free_port_on(HOST_ADDRESSES)
        for count in (1, 2, 3):
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
                log(f"{count} host(s) through HAProxy")
                rows.append(
                    measure(
                        f"{count} host(s), HAProxy",
                        hosts,
                        balancer.url + "issue1",
                        server,
                        balancer,
                        args,
                        wrk,
                    )
                )
                if count == 1:
                    balancer.stop()
                    log("1 host, direct")
                    direct = measure(
                        "1 host, direct",
                        hosts,
                        hosts[0].url + "issue1",
                        server,
                        None,
                        args,
                        wrk,
                    )
        rows.append(direct)
        costs = connection_costs(server, home)
    cores = os.cpu_count() or 1
    print(
        f"roundup-wsgi cluster benchmark: GET /issue1, wrk -t1 "
        f"-c{args.cluster_connections}, {args.seconds} s per row; each host "
        f"gunicorn with 2 sync workers; {cores} CPU cores shared by every "
        f"process (hosts, HAProxy, PostgreSQL, wrk); "
        f"{time.monotonic() - started:.0f} s"
    )
    print(render(rows))
    print(
        f"PostgreSQL CPU per connection (connect + close): "
        f"{costs['pg_cpu_ms_per_connection']:.2f} ms; per Roundup database "
        f"open + close (once per request): {costs['pg_cpu_ms_per_roundup_open']:.2f} ms"
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "benchmark.json").write_text(
        json.dumps(
            {
                "cores": cores,
                "seconds": args.seconds,
                "connections": args.cluster_connections,
                "rows": [asdict(row) for row in rows],
                **costs,
            },
            indent=2,
        )
    )
