"""The cluster recipe (deploy/cluster/) under load, with hosts lost and
restarted: nothing acknowledged is lost, a rolling restart fails nothing.

All on loopback: three app hosts on 127.0.1.1, 127.0.1.2 and 127.0.1.3
(each a gunicorn master with 2 sync workers from
``deploy/gunicorn.conf.py``, all serving one shared tracker home),
HAProxy on 127.0.0.1 from ``deploy/cluster/haproxy.cfg`` (active health
checks on ``/-/ready``), and a real PostgreSQL.  16 clients (half through
the web form with its CSRF token, half through REST) create issues with a
message and an attachment for ``ROUNDUP_WSGI_CLUSTER_SECONDS`` seconds
(default 30; the issue's long run is 120).  Meanwhile:

1. one host is killed (SIGKILL to its master and both workers, by PID) and
   started again 5 s later;
2. then a rolling restart of all three, one at a time: drain file created
   (``/-/ready`` answers 503), HAProxy marks the host DOWN, its last
   request ends, SIGTERM, drain file removed, started, HAProxy marks it UP.

Afterwards every acknowledged issue is read back with Roundup's API (exact
title, message text, attachment bytes, exactly once); no request failed
during the rolling restart; the requests that failed around the kill were
all in flight on the killed host when it died (counted and reported); and
a user logged in through the balancer is still logged in on every host,
before and after the restarts.  Figures go to
``test-artifacts/cluster/cluster.json``.
"""

from __future__ import annotations

import functools
import shutil
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from helpers import loadclient, pg, seeded
from helpers.cluster import (
    HOST_ADDRESSES,
    AppHost,
    Balancer,
    free_port_on,
)
from helpers.servers import LocalSession, free_port
from helpers.system import require_program

from roundup_wsgi.cli.check import run_checks

pytestmark = pytest.mark.slow

#: Seconds of load (env ROUNDUP_WSGI_CLUSTER_SECONDS; the issue's long run: 120).
LOAD_SECONDS = loadclient.load_seconds("ROUNDUP_WSGI_CLUSTER_SECONDS", 30)
CLIENTS = loadclient.CLIENTS
#: Seconds between the kill and the restart of the killed host.
DOWN_SECONDS = 5.0
ARTIFACTS = loadclient.artifacts_dir("cluster")


@dataclass
class Sent:
    """One request as a client saw it (times: ``time.monotonic()``);
    ``status`` 0 when no response came (``error`` says why)."""

    start: float
    end: float
    method: str
    path: str
    status: int
    served_by: str
    error: str = ""


@dataclass
class Log:
    """Every request the load clients sent."""

    sent: list[Sent] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, entry: Sent) -> None:
        with self.lock:
            self.sent.append(entry)

    def between(self, start: float, end: float) -> list[Sent]:
        """Requests that were in progress at some time in ``[start, end]``."""
        return [s for s in self.sent if s.end >= start and s.start <= end]


class RecordingSession(LocalSession):
    """A LocalSession that adds every request, answered or not, to a Log."""

    def __init__(self, log: Log) -> None:
        super().__init__()
        self.log = log

    def request(  # type: ignore[override]
        self, method: str, url: str, *args: Any, **kwargs: Any
    ) -> requests.Response:
        path = urlsplit(url).path
        start = time.monotonic()
        try:
            response = super().request(method, url, *args, **kwargs)
        except requests.RequestException as error:
            self.log.add(Sent(start, time.monotonic(), method, path, 0, "", str(error)))
            raise
        served_by = response.headers.get("X-Served-By", "")
        self.log.add(
            Sent(start, time.monotonic(), method, path, response.status_code, served_by)
        )
        return response


class ClusterClient(loadclient.LoadClient):
    """A load client that goes on after a failed request (the balancer is
    still there when a host dies) and records every request in ``log``."""

    def __init__(self, log: Log, *args: Any) -> None:
        super().__init__(*args)
        self.session = RecordingSession(log)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.login()
                break
            except (requests.RequestException, AssertionError) as error:
                with self.result.lock:
                    self.result.errors.append(f"{self.name} login: {error}")
        while not stop.is_set():
            self.create_one()


@dataclass
class Phases:
    """When each event happened (``time.monotonic()``)."""

    load_start: float = 0.0
    kill: float = 0.0
    killed: float = 0.0
    killed_up: float = 0.0
    rolling_start: float = 0.0
    rolling_end: float = 0.0
    load_end: float = 0.0
    steps: list[dict[str, Any]] = field(default_factory=list)


def keep_logs(work: Path) -> None:
    """Copy the hosts' and HAProxy's logs to the artifacts directory."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for name in ("hosts/app1.log", "hosts/app2.log", "hosts/app3.log"):
        if (work / name).exists():
            shutil.copy(work / name, ARTIFACTS / Path(name).name)
    if (work / "haproxy" / "haproxy.log").exists():
        shutil.copy(work / "haproxy" / "haproxy.log", ARTIFACTS / "haproxy.log")


def logged_in_everywhere(
    balancer: Balancer, session: requests.Session, rounds: int = 12
) -> dict[str, int]:
    """GET the front page ``rounds`` times with ``session``; assert each
    answer shows the user logged in; return the answers counted by host."""
    hosts: dict[str, int] = {}
    for _ in range(rounds):
        page = session.get(balancer.url, timeout=60)
        assert page.status_code == 200, page.text[:300]
        served_by = page.headers.get("X-Served-By", "?")
        assert f"Hello, {seeded.DEMO_USER}" in page.text, (
            f"not logged in on {served_by}"
        )
        hosts[served_by] = hosts.get(served_by, 0) + 1
    return hosts


def rolling_restart(hosts: list[AppHost], balancer: Balancer, phases: Phases) -> None:
    """Drain, stop, start each host in turn, as deploy/cluster/README.rst says."""
    for host in hosts:
        begin = time.monotonic()
        host.drain()
        to_down = balancer.wait_state(host.name, "DOWN")
        to_idle = balancer.wait_idle(host.name)
        stopping = time.monotonic()
        host.terminate()
        stopped = time.monotonic()
        host.undrain()
        host.start()
        ready = time.monotonic()
        to_up = balancer.wait_state(host.name, "UP")
        phases.steps.append(
            {
                "host": host.name,
                "drained_to_down_s": round(to_down, 2),
                "down_to_idle_s": round(to_idle, 2),
                "sigterm_to_exit_s": round(stopped - stopping, 2),
                "start_to_ready_s": round(ready - stopped, 2),
                "ready_to_up_s": round(to_up, 2),
                "total_s": round(time.monotonic() - begin, 2),
            }
        )


def test_cluster_loses_nothing(tmp_path: Path) -> None:
    haproxy = require_program("haproxy", "apt-get install haproxy")
    phases = Phases()
    log = Log()
    result = loadclient.LoadResult()
    with ExitStack() as stack:
        stack.callback(keep_logs, tmp_path)
        server = stack.enter_context(pg.running_postgres(tmp_path / "pg"))
        balancer_port = free_port()
        web = f"http://127.0.0.1:{balancer_port}/"
        # The shared tracker home: one directory every host serves.
        home = pg.create_pg_tracker(
            server,
            tmp_path / "shared" / "tracker",
            "roundup_cluster",
            admin_password=seeded.ADMIN_PASSWORD,
            web=web,
            settings={"indexer": "native"},
        )
        user_id = seeded.add_demo_user(home)

        # What check --cluster says of this setup: only the storage (one
        # local directory, fine on one machine: FAIL, or a warning on a
        # filesystem it does not know) and the database on loopback
        # (likewise: a warning) are flagged.
        findings = {f.check: f for f in run_checks(home, url=web, cluster=True)}
        assert findings["cluster database host"].warn
        passed = {"cluster files", "cluster database host"}
        assert all(f.ok for name, f in findings.items() if name not in passed), [
            f for f in findings.values() if not f.ok
        ]

        port = free_port_on(HOST_ADDRESSES)
        hosts = [
            AppHost(f"app{n + 1}", address, port, home, tmp_path / "hosts")
            for n, address in enumerate(HOST_ADDRESSES)
        ]
        for host in hosts:
            stack.callback(host.cleanup)
            host.start(wait=False)
        for host in hosts:
            host.wait_ready()
        balancer = Balancer(haproxy, hosts, balancer_port, tmp_path / "haproxy")
        stack.callback(balancer.stop)
        balancer.start()

        # One login through the balancer, then pages from every host.
        watcher = loadclient.LoadClient(
            web,
            seeded.DEMO_USER,
            seeded.DEMO_PASSWORD,
            user_id,
            "form",
            "watcher",
            loadclient.LoadResult(),
        )
        watcher.login()
        before = logged_in_everywhere(balancer, watcher.session)
        assert set(before) == {h.name for h in hosts}, before

        clients = loadclient.make_clients(
            functools.partial(ClusterClient, log), web, user_id, result
        )
        stop = threading.Event()
        threads = [
            threading.Thread(target=c.run, args=(stop,), name=c.name, daemon=True)
            for c in clients
        ]
        phases.load_start = time.monotonic()
        for thread in threads:
            thread.start()
        try:
            busy_by = time.monotonic() + 120
            while len({a.title.split()[1] for a in result.attempts}) < CLIENTS:
                assert time.monotonic() < busy_by, "the clients did not start"
                time.sleep(0.2)
            time.sleep(1)  # every client logged in and creating issues
            victim = hosts[1]
            phases.kill = time.monotonic()
            killed_pids = victim.kill()
            phases.killed = time.monotonic()  # every process of it is gone
            time.sleep(DOWN_SECONDS)
            victim.start()
            balancer.wait_state(victim.name, "UP")
            phases.killed_up = time.monotonic()

            time.sleep(2)
            phases.rolling_start = time.monotonic()
            rolling_restart(hosts, balancer, phases)
            phases.rolling_end = time.monotonic()
            remaining = phases.load_start + LOAD_SECONDS - time.monotonic()
            time.sleep(max(remaining, 2.0))
        finally:
            stop.set()
            for thread in threads:
                thread.join(loadclient.TIMEOUT * 3)
        phases.load_end = time.monotonic()
        assert not any(t.is_alive() for t in threads), "a client hangs"

        # The same login, after every host has been restarted.
        after = logged_in_everywhere(balancer, watcher.session)
        assert set(after) == {h.name for h in hosts}, after
        stats = balancer.servers()
        haproxy_failures = balancer.failures()
        check = loadclient.verify_issues(str(home), result)

    failed = [s for s in log.sent if s.status >= 500 or s.status == 0]
    # In flight on the killed host: in progress when it died, and answered
    # by it (HAProxy's 502) or not at all.  HAProxy answers nothing, and
    # logs nothing, for a request on a reused client connection whose
    # server connection closed before any response: it closes the client
    # connection so that the client may retry (HTTP/1.1 behaviour; see
    # haproxy/haproxy issues 1423 and 3414).  requests never repeats a POST.
    in_flight = [
        s
        for s in failed
        # In progress at some moment of the kill: it reads the PIDs, then
        # kills the master and each worker, so a request sent just after
        # it began can still reach a worker that has not died yet.
        if s.start <= phases.killed
        and s.end >= phases.kill
        and s.served_by in (victim.name, "")
    ]
    other_failures = [s for s in failed if s not in in_flight]
    rolling = log.between(phases.rolling_start, phases.rolling_end)
    rolling_failed = [s for s in rolling if s.status >= 500 or s.status == 0]
    kill_window = log.between(phases.kill, phases.killed_up)
    served = {h.name: sum(s.served_by == h.name for s in log.sent) for h in hosts}

    def rel(t: float) -> float:
        return round(t - phases.load_start, 2)

    figures = {
        "hosts": [h.bind for h in hosts],
        "balancer": balancer.url,
        "server": "gunicorn, 2 sync workers per host; HAProxy leastconn, maxconn 2",
        "backend": "postgresql",
        "clients": CLIENTS,
        "seconds": round(phases.load_end - phases.load_start, 1),
        **result.summary(),
        "requests_by_host": served,
        "haproxy_requests_by_host": {n: int(s["stot"]) for n, s in stats.items()},
        "haproxy_errors_by_host": {
            n: {k: int(s[k] or 0) for k in ("econ", "eresp", "srv_abrt", "cli_abrt")}
            for n, s in stats.items()
        },
        "haproxy_retries": sum(int(s["wretr"] or 0) for s in stats.values()),
        "haproxy_redispatches": sum(int(s["wredis"] or 0) for s in stats.values()),
        "kill": {
            "host": victim.name,
            "pids": killed_pids,
            "at_s": rel(phases.kill),
            "up_again_s": rel(phases.killed_up),
            "requests_during": len(kill_window),
            "failed_in_flight": len(in_flight),
            "failed": [
                f"{s.method} {s.path} {s.status or s.error} via "
                f"{s.served_by or '-'} at {rel(s.start)}-{rel(s.end)} s"
                for s in failed
            ],
            "haproxy_log_failures": haproxy_failures,
        },
        "rolling_restart": {
            "from_s": rel(phases.rolling_start),
            "to_s": rel(phases.rolling_end),
            "requests_during": len(rolling),
            "failed": len(rolling_failed),
            "steps": phases.steps,
        },
        "login_seen_on_hosts": {"before": before, "after": after},
        **loadclient.verification_figures(check),
    }
    loadclient.write_figures(ARTIFACTS / "cluster.json", figures)

    assert not check.problems, check.problems[:10]
    assert result.acknowledged, "no issue was acknowledged"
    assert check.verified == len(result.acknowledged)
    assert {a.via for a in result.acknowledged} == {"form", "rest"}
    # result.errors holds the same failures as exceptions: each is in `failed`.
    assert not rolling_failed, rolling_failed[:5]
    assert not other_failures, other_failures[:5]
    # HAProxy repeated every GET that was in flight (retry-on
    # empty-response); what failed are POSTs, which it must not repeat.
    assert all(s.method == "POST" for s in in_flight), in_flight
    assert all(served.values()), served
