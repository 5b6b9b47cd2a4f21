"""Access log, readiness and metrics under real servers (gunicorn with two
workers, waitress), and ``roundup-wsgi serve`` as an admin runs it.

The access log is parsed with the ``apachelogs`` package (the combined
format plus ``%D`` and the trace id) and each line matched to the request
sent (a User-Agent per request); the metrics are parsed with
``prometheus_client``'s own parser; readiness is watched while the sqlite db
directory is made unwritable (``chattr +i`` as root) and while PostgreSQL is
stopped.  Requests from outside the allowed networks come from 127.0.0.2:
all traffic stays on loopback.
"""

from __future__ import annotations

import base64
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from helpers import pg, seeded
from helpers.servers import (
    LocalSession,
    ServerProcess,
    free_port,
    gunicorn_command,
    stop_process,
    waitress_command,
)
from helpers.system import require_program

pytestmark = pytest.mark.slow

apachelogs = pytest.importorskip("apachelogs")
prometheus_parser = pytest.importorskip("prometheus_client.parser")

SERVERS = {"gunicorn": gunicorn_command, "waitress": waitress_command}
#: Seconds to wait for readiness to change (it is cached for one second).
READY_WAIT = 20.0


def operations_env(home: Path, metrics_dir: Path) -> dict[str, str]:
    metrics_dir.mkdir()
    return {
        "ROUNDUP_TRACKER_HOME": str(home),
        "ROUNDUP_WSGI_ACCESS_LOG": "on",
        "ROUNDUP_WSGI_METRICS": "on",
        "ROUNDUP_WSGI_HEALTH_NETWORKS": "127.0.0.1/32",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }


class SourceAddressSession(LocalSession):
    """A session whose connections come from ``source`` (a loopback address)."""

    def __init__(self, source: str) -> None:
        super().__init__()
        from requests.adapters import HTTPAdapter

        class Adapter(HTTPAdapter):
            def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
                kwargs["source_address"] = (source, 0)
                super().init_poolmanager(*args, **kwargs)

        self.mount("http://", Adapter())


def access_lines(log: Path) -> list[Any]:
    """The access-log lines of a server's stderr, parsed."""
    from roundup_wsgi.wsgi.accesslog import LOG_FORMAT

    parser = apachelogs.LogParser(LOG_FORMAT)
    entries = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            entries.append(parser.parse(line))
        except apachelogs.InvalidEntryError:
            continue  # the server's own messages
    return entries


def scrape(session: LocalSession, web: str) -> dict[str, list[Any]]:
    """``{metric family name: samples}`` of ``/-/metrics``."""
    answer = session.get(web + "-/metrics")
    assert answer.status_code == 200, answer.text[:500]
    assert answer.headers["Content-Type"].startswith("text/plain")
    return {
        family.name: family.samples
        for family in prometheus_parser.text_string_to_metric_families(answer.text)
    }


@pytest.mark.parametrize("server_name", sorted(SERVERS))
def test_access_log_and_metrics_match_the_requests(
    server_name: str, make_tracker: Any, tmp_path: Path
) -> None:
    port = free_port()
    web = f"http://127.0.0.1:{port}/"
    home = make_tracker(web)
    env = operations_env(home, tmp_path / "metrics")
    command = SERVERS[server_name](port)
    secret = "never-logged-secret"
    basic = base64.b64encode(f"{seeded.DEMO_USER}:{seeded.DEMO_PASSWORD}".encode())
    # (method, path, extra headers, expected status, expected kind)
    plan: list[tuple[str, str, dict[str, str], int, str]] = [
        ("GET", "issue1", {}, 200, "page"),
        ("GET", "@@file/style.css", {}, 200, "static"),
        ("GET", f"file1/{seeded.SMALL_FILE_NAME}", {}, 200, "file"),
        ("GET", f"file1/{seeded.SMALL_FILE_NAME}", {"Range": "bytes=0-4"}, 206, "file"),
        ("HEAD", "issue1", {}, 200, "page"),
        ("GET", "nosuchclass", {}, 404, "page"),
        ("GET", f"issue1?__login_password={secret}", {}, 200, "page"),
        (
            "GET",
            "rest/data/issue",
            {"Authorization": "Basic " + basic.decode()},
            200,
            "rest",
        ),
    ] * 3  # enough for both gunicorn workers
    with (
        ServerProcess(
            command, port, tmp_path, env=env, name=server_name, ready_path="/-/health"
        ) as server,
        LocalSession() as session,
        SourceAddressSession("127.0.0.2") as outsider,
    ):
        # Bytes as sent: no compression (len(answer.content) is decoded).
        session.headers["Accept-Encoding"] = "identity"
        sent: dict[str, tuple[str, str, int, int, str]] = {}
        for number, (method, path, headers, status, kind) in enumerate(plan):
            agent = f"operations-test/{number}"
            answer = session.request(
                method, web + path, headers={**headers, "User-Agent": agent}
            )
            assert answer.status_code == status, (path, answer.text[:300])
            sent[agent] = (method, "/" + path, status, len(answer.content), kind)
        # Not in the allowed networks: Roundup's answer, no health data.
        for path in ("-/health", "-/ready", "-/metrics"):
            answer = outsider.get(
                web + path, headers={"User-Agent": "operations-test/outsider"}
            )
            assert answer.status_code == 404, answer.text[:300]
            assert answer.text == "Not found: " + path
            sent[f"outsider {path}"] = (
                "GET",
                "/" + path,
                404,
                len(answer.content),
                "page",
            )
        assert session.get(web + "-/health").json() == {"status": "ok"}
        families = scrape(session, web)
        time.sleep(0.5)  # the last lines reach the log file
        entries = access_lines(server.stderr_log)

    # -- the access log: one line per request, as sent ----------------------
    by_agent = {e.headers_in["User-Agent"]: e for e in entries}
    for agent, (method, path, status, size, _kind) in sent.items():
        if agent.startswith("outsider"):
            continue
        entry = by_agent[agent]
        assert entry.request_line.startswith(f"{method} "), entry.request_line
        target = entry.request_line.split()[1]
        assert target == path.replace(secret, "***"), entry.request_line
        assert entry.final_status == status
        assert (entry.bytes_sent or 0) == size, (agent, entry.request_line)
        assert entry.remote_host == "127.0.0.1"
        assert entry.request_duration_microseconds > 0
        trace = entry.notes["trace_id"]
        assert re.fullmatch(r"[A-Za-z0-9_-]{8,}", trace), trace
    traces = [by_agent[a].notes["trace_id"] for a in sent if a in by_agent]
    assert len(set(traces)) == len(traces)
    outsiders = [e for e in entries if e.headers_in["User-Agent"].endswith("outsider")]
    assert [e.remote_host for e in outsiders] == ["127.0.0.2"] * 3
    text = server.stderr_log.read_text(errors="replace")
    assert secret not in text
    assert basic.decode() not in text
    assert seeded.DEMO_PASSWORD not in text

    # -- the metrics: every request counted once, across the workers --------
    expected: Counter[tuple[str, str, str]] = Counter()
    expected_bytes = 0
    for method, _path, status, size, kind in sent.values():
        expected[(method, f"{status // 100}xx", kind)] += 1
        expected_bytes += size
    counted: Counter[tuple[str, str, str]] = Counter()
    for sample in families["roundup_wsgi_requests"]:
        if sample.name != "roundup_wsgi_requests_total":
            continue
        labels = sample.labels
        assert labels["tracker"] == home.name
        if labels["kind"] == "health":
            continue  # the start-up poll and the /-/health above
        counted[(labels["method"], labels["status"], labels["kind"])] += int(
            sample.value
        )
    assert counted == expected
    sent_bytes = sum(
        s.value
        for s in families["roundup_wsgi_response_bytes"]
        if s.name == "roundup_wsgi_response_bytes_total"
        and s.labels["kind"] != "health"
    )
    assert sent_bytes == expected_bytes
    durations = [
        s
        for s in families["roundup_wsgi_request_duration_seconds"]
        if s.name.endswith("_count") and s.labels["kind"] == "page"
    ]
    assert sum(s.value for s in durations) == sum(
        n for (_m, _s, kind), n in expected.items() if kind == "page"
    )
    in_flight = [s.value for s in families["roundup_wsgi_requests_in_flight"]]
    assert sum(in_flight) == 1  # the scrape itself
    # Series of events that never happened: there, at 0, for rate().
    for name in ("roundup_wsgi_request_too_large", "roundup_wsgi_database_unavailable"):
        values = [s.value for s in families[name] if s.name == name + "_total"]
        assert values == [0], name


def wait_ready(session: LocalSession, web: str, status: int) -> dict[str, Any]:
    """Poll ``/-/ready`` until it answers ``status`` twice in a row (two
    gunicorn workers cache their results separately); return the last body."""
    deadline = time.monotonic() + READY_WAIT
    streak = 0
    while True:
        answer = session.get(web + "-/ready")
        streak = streak + 1 if answer.status_code == status else 0
        if streak >= 4:
            body: dict[str, Any] = answer.json()
            return body
        assert time.monotonic() < deadline, (answer.status_code, answer.text)
        time.sleep(0.3)


@pytest.mark.parametrize("server_name", sorted(SERVERS))
def test_ready_fails_while_the_sqlite_db_directory_is_unwritable(
    server_name: str, make_tracker: Any, tmp_path: Path
) -> None:
    port = free_port()
    web = f"http://127.0.0.1:{port}/"
    home = make_tracker(web)
    env = {"ROUNDUP_TRACKER_HOME": str(home)}
    chattr = require_program("chattr", "apt-get install e2fsprogs")
    db = home / "db"
    with (
        ServerProcess(SERVERS[server_name](port), port, tmp_path, env=env),
        LocalSession() as session,
    ):
        assert wait_ready(session, web, 200)["status"] == "ok"
        if os.geteuid() == 0:
            subprocess.run([chattr, "+i", str(db)], check=True)
        else:
            db.chmod(0o555)
        try:
            body = wait_ready(session, web, 503)
            # (sqlite may refuse to open the database there as well)
            assert "db_directory" in body["failing"]
            assert set(body["failing"]) <= {"db_directory", "database"}
            answer = session.get(web + "-/ready")
            assert answer.headers["Retry-After"] == "5"
            assert str(home) not in answer.text
        finally:
            if os.geteuid() == 0:
                subprocess.run([chattr, "-i", str(db)], check=True)
            else:
                db.chmod(0o755)
        assert wait_ready(session, web, 200)["status"] == "ok"


@pytest.mark.parametrize("server_name", sorted(SERVERS))
def test_ready_fails_while_postgresql_is_stopped(
    server_name: str, tmp_path: Path
) -> None:
    port = free_port()
    web = f"http://127.0.0.1:{port}/"
    with pg.running_postgres(tmp_path / "pg") as database:
        home = pg.create_pg_tracker(
            database,
            tmp_path / "pgtracker",
            f"ready_{server_name}",
            admin_password=seeded.ADMIN_PASSWORD,
            web=web,
        )
        env = {"ROUNDUP_TRACKER_HOME": str(home)}
        with (
            ServerProcess(SERVERS[server_name](port), port, tmp_path, env=env),
            LocalSession() as session,
        ):
            assert wait_ready(session, web, 200)["checks"]["database"] == "ok"
            assert "db_directory" not in wait_ready(session, web, 200)["checks"]
            database.stop()
            body = wait_ready(session, web, 503)
            assert body["failing"] == ["database"]
            assert str(database.port) not in str(body)
            database.start()
            assert wait_ready(session, web, 200)["status"] == "ok"


# -- roundup-wsgi serve for production -----------------------------------------


def serve_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "roundup_wsgi", "serve", *args]


def start_serve(
    args: list[str], tmp_path: Path, name: str = "serve"
) -> tuple[subprocess.Popen[bytes], Path, Path]:
    out = tmp_path / f"{name}.out"
    err = tmp_path / f"{name}.err"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        proc = subprocess.Popen(
            serve_command(*args),
            stdout=stdout,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            cwd=str(tmp_path),
            env=env,
        )
    return proc, out, err


def wait_for(predicate: Any, what: str, proc: subprocess.Popen[bytes]) -> Any:
    deadline = time.monotonic() + 60
    while True:
        value = predicate()
        if value:
            return value
        assert proc.poll() is None, f"serve exited ({proc.returncode}) before {what}"
        assert time.monotonic() < deadline, f"no {what} within 60 s"
        time.sleep(0.1)


def test_serve_port_0_access_log_file_and_graceful_stop(
    make_tracker: Any, tmp_path: Path
) -> None:
    """``--port 0`` prints the port; the access log goes to the file; on
    SIGTERM a download in progress finishes, new connections are refused and
    the command exits 0."""
    home = make_tracker("http://127.0.0.1:8080/")
    log = tmp_path / "access.log"
    proc, out, err = start_serve(
        [str(home), "--port", "0", "--access-log", str(log)], tmp_path
    )
    try:
        found = wait_for(
            lambda: re.search(r"Listening on port (\d+)", out.read_text()),
            "port line",
            proc,
        )
        port = int(found.group(1))
        web = f"http://127.0.0.1:{port}/"
        received: list[int] = []
        started = threading.Event()

        def slow_download() -> None:
            with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
                sock.sendall(
                    f"GET /file2/{seeded.BIG_FILE_NAME} HTTP/1.0\r\n"
                    "Host: 127.0.0.1\r\n\r\n".encode()
                )
                total = 0
                while True:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    total += len(chunk)
                    started.set()
                    time.sleep(0.01)  # a slow client: ~6 MB/s at most
                received.append(total)

        with LocalSession() as session:
            assert session.get(web + "issue1").status_code == 200
        reader = threading.Thread(target=slow_download)
        reader.start()
        assert started.wait(30)
        proc.send_signal(signal.SIGTERM)
        reader.join(60)
        assert received
        assert received[0] > seeded.BIG_FILE_SIZE  # headers + body
        assert proc.wait(60) == 0
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
    finally:
        stop_process(proc)
    assert out.read_text().rstrip().endswith("Stopped.")
    lines = log.read_text().splitlines()
    assert any('"GET /issue1 HTTP/1.1" 200' in line for line in lines), lines
    big = [line for line in lines if f"/file2/{seeded.BIG_FILE_NAME}" in line]
    assert big
    assert f" 200 {seeded.BIG_FILE_SIZE} " in big[0], big
    assert "Traceback" not in err.read_text()


def test_serve_on_a_unix_socket(make_tracker: Any, tmp_path: Path) -> None:
    home = make_tracker("http://127.0.0.1:8080/")
    path = tmp_path / "roundup.sock"
    proc, out, _err = start_serve(
        [str(home), "--unix-socket", str(path), "--access-log", "off"], tmp_path
    )
    try:
        wait_for(path.exists, "socket", proc)
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(60)
            sock.connect(str(path))
            sock.sendall(b"GET /issue1 HTTP/1.0\r\nHost: 127.0.0.1:8080\r\n\r\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        assert data.startswith(b"HTTP/1.0 200 "), data[:200]
        assert b"Sample issue one" in data
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        assert not path.exists()
    finally:
        stop_process(proc)
    assert f"unix:{path}" in out.read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--host", "nosuchhost.invalid"], "--host nosuchhost.invalid: cannot listen"),
        (["--port", "70000"], "argument --port: '70000' is not a port number"),
        (["--unix-socket", "/nonexistent/dir/r.sock"], "the directory /nonexistent"),
        (["--access-log", "/nonexistent/dir/a.log"], "--access-log /nonexistent"),
        (["--health-network", "lan"], "--health-network: health network 'lan'"),
        (["--trusted-proxy", "lan"], "--trusted-proxy: trusted proxy 'lan'"),
    ],
)
def test_serve_bad_arguments_are_one_line_errors(
    args: list[str], message: str, make_tracker: Any, tmp_path: Path
) -> None:
    home = make_tracker("http://127.0.0.1:8080/")
    result = subprocess.run(
        serve_command(str(home), "--port", "0", *args)
        if "--port" not in args
        else serve_command(str(home), *args),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=str(tmp_path),
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert "Traceback" not in result.stderr
