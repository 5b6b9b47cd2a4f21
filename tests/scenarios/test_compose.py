"""deploy/container/compose.yaml brought up with podman-compose (issue 20).

One stack per module (slow): PostgreSQL (tests/containers/postgres.Containerfile,
no registry image) and the two app replicas on empty named volumes, with
host networking on loopback (tests/containers/compose-host-network.yaml).
podman-compose 1.0.3 ignores ``depends_on: condition: service_healthy``, so
the stack comes up as docs/container.rst tells its users: ``up -d db``, wait
for its health check, then ``up -d``.  An issue created through one replica
is read (and its attachment downloaded byte-exact) through the other; then
HAProxy from deploy/cluster/haproxy.cfg (on the host, loopback) fronts both
under a bounded GET load while ``podman stop`` stops one replica: no request
may fail.  A fast test checks compose.yaml for what podman-compose 1.0.3
cannot run.
"""

from __future__ import annotations

import http.client
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers.cluster import Balancer
from helpers.compose import COMPOSE_FILES, Compose, postgres_image, write_secrets
from helpers.container import Podman, build_image, podman_or_skip
from helpers.deploy import Session, form_with, log_in_with_token
from helpers.servers import free_port
from helpers.system import require_program

#: The bounded load: this many GETs of the front page from this many threads,
#: within LOAD_DEADLINE seconds; the stop starts after STOP_AFTER answers.
LOAD_REQUESTS = 300
LOAD_THREADS = 4
LOAD_DEADLINE = 60.0
STOP_AFTER = 60


def test_compose_yaml_avoids_what_podman_compose_cannot_run() -> None:
    text = COMPOSE_FILES[0].read_text()
    # podman-compose 1.0.3 leaves "${VAR:-}" (an empty default) literal
    assert re.findall(r"\$\{\w+:?-\}", text) == []
    # podman cannot publish one container port on a range of host ports
    assert re.findall(r"\d+-\d+:\d+", text) == []
    assert "${POSTGRES_IMAGE:-" in text
    assert "${ROUNDUP_IMAGE:-" in text


@dataclass(frozen=True)
class Replica:
    """One app replica as :class:`helpers.cluster.Balancer` sees it."""

    name: str
    port: int
    cid: str

    @property
    def bind(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.bind}/"


@dataclass
class Stack:
    """The running stack: its replicas, the admin password, its compose."""

    compose: Compose
    podman: Podman
    replicas: tuple[Replica, Replica]
    admin_password: str
    seconds_to_healthy: float


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The compose stack, up and healthy; removed (by ID) afterwards."""
    work = tmp_path_factory.mktemp("compose")
    podman = podman_or_skip(work)
    require_program("podman-compose", "apt-get install podman-compose")
    image, postgres = build_image(podman), postgres_image(podman)
    values = write_secrets(work / "secrets")
    ports = {name: free_port() for name in ("db", "app1", "app2")}
    compose = Compose(
        podman,
        {
            "ROUNDUP_IMAGE": image,
            "POSTGRES_IMAGE": postgres,
            "ROUNDUP_DB_HOST": "127.0.0.1",
            "ROUNDUP_DB_PORT": str(ports["db"]),
            "ROUNDUP_WEB": f"http://127.0.0.1:{ports['app1']}/",
            "ROUNDUP_WORKERS": "2",
            "TEST_APP1_PORT": str(ports["app1"]),
            "TEST_APP2_PORT": str(ports["app2"]),
            "TEST_SECRETS": str(work / "secrets"),
        },
    )
    try:
        start = time.monotonic()
        compose("up", "-d", "--no-build", "db")
        podman.wait_healthy(compose.container("db"))
        compose("up", "-d", "--no-build")
        replicas = (
            Replica("app1", ports["app1"], compose.container("app1")),
            Replica("app2", ports["app2"], compose.container("app2")),
        )
        for replica in replicas:
            podman.wait_healthy(replica.cid, timeout=120)
        seconds = time.monotonic() - start
        print(f"compose stack up to healthy (first start): {seconds:.1f} s")
        yield Stack(compose, podman, replicas, values["admin_password"], seconds)
    finally:
        compose.remove()


@pytest.mark.slow
def test_an_issue_made_through_one_replica_is_read_through_the_other(
    stack: Stack,
) -> None:
    first, second = stack.replicas
    attachment = os.urandom(200_000)
    with Session(True) as session:
        log_in_with_token(session, first.url, "admin", stack.admin_password)
        page = session.get(first.url + "issue?@template=item")
        token = form_with(page.text, "title")["@csrf"]
        created = session.post(
            first.url + "issue",
            data={"title": "made through app1", "@action": "new", "@csrf": token},
            files={"@file": ("payload.bin", attachment, "application/octet-stream")},
            headers={"Origin": first.url.rstrip("/"), "Referer": page.url},
            allow_redirects=False,
        )
        assert created.status_code in (302, 303), created.text[:2000]
        issue = str(created.headers["Location"]).split("?")[0].rsplit("/", 1)[1]
        # the session (PostgreSQL) and the attachment (data volume) are shared
        read = session.get(second.url + issue)
        assert read.status_code == 200
        assert "made through app1" in read.text
        assert "Hello, admin" in read.text
        download = session.get(second.url + "file1/payload.bin")
        assert download.status_code == 200
        assert download.content == attachment


def get_front_page(port: int) -> tuple[int, str]:
    """``GET /`` through HAProxy on a new connection: (status, server) or
    (-1, the exception) when it failed."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", "/")
        response = connection.getresponse()
        response.read()
        return response.status, response.getheader("X-Served-By", "?")
    except (OSError, http.client.HTTPException) as exc:
        return -1, repr(exc)
    finally:
        connection.close()


@pytest.mark.slow
def test_no_request_fails_across_a_replica_stop_under_load(
    stack: Stack, tmp_path: Path
) -> None:
    haproxy = require_program("haproxy", "apt-get install haproxy")
    balancer = Balancer(haproxy, stack.replicas, free_port(), tmp_path / "haproxy")
    balancer.start()
    try:
        stopped = stack.replicas[1]
        done = threading.Semaphore(0)
        stop: dict[str, float] = {}

        def run_stop() -> None:
            for _ in range(STOP_AFTER):
                done.acquire()
            stop["start"] = time.monotonic()
            stack.podman("stop", "-t", "40", stopped.cid)
            stop["end"] = time.monotonic()

        def one(_: int) -> tuple[int, str, float]:
            result = get_front_page(balancer.port)
            done.release()
            return (*result, time.monotonic())

        stopper = threading.Thread(target=run_stop)
        stopper.start()
        start = time.monotonic()
        with ThreadPoolExecutor(LOAD_THREADS) as pool:
            results = list(pool.map(one, range(LOAD_REQUESTS), timeout=LOAD_DEADLINE))
        seconds = time.monotonic() - start
        stopper.join(60)
        assert "end" in stop, "podman stop did not finish"
        failed = [(status, detail) for status, detail, _ in results if status != 200]
        during = [r for r in results if stop["start"] <= r[2] <= stop["end"]]
        after = Counter(server for _, server, at in results if at > stop["end"])
        exit_code = stack.podman(
            "inspect", "--format", "{{.State.ExitCode}}", stopped.cid
        ).stdout.strip()
        served_by = Counter(server for _, server, _ in results)
        figures = {
            "requests": len(results),
            "seconds": round(seconds, 2),
            "failed": len(failed),
            "served_by": dict(served_by),
            "answered_during_stop": len(during),
            "stop_seconds": round(stop["end"] - stop["start"], 2),
            "served_after_stop": dict(after),
            "stopped_exit_code": exit_code,
            "haproxy_log_failures": len(balancer.failures()),
        }
        print(f"replica stop under load: {figures}")
        assert failed == [], figures
        assert exit_code == "0", figures  # gunicorn drained, not killed
        assert set(after) == {"app1"}, figures
        assert served_by["app2"] > 0, figures  # it served before its stop
    finally:
        balancer.stop()
