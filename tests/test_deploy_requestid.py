"""Request ids under the deploy/ balancers, for real: the id nginx or
HAProxy logged for a request is the one in our access log line, in
Roundup's own log lines and in the response; a client that reaches the
application directly cannot choose it (issue 23).  Also: nginx's recipe
serves the tracker over HTTP/2, and the JSON access log of a real server."""

from __future__ import annotations

import http.client
import json
import re
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
from helpers import seeded
from helpers.cluster import HOST_ADDRESSES, AppHost, Balancer, free_port_on
from helpers.deploy import (
    ListeningProcess,
    NginxSite,
    Session,
    checked_haproxy_config,
    log_in,
    serve_command,
    tracker,
)
from helpers.servers import ServerProcess, free_port
from helpers.system import require_program
from test_http2 import h2_visit

pytestmark = pytest.mark.slow


def log_roundup_to(home: Path, log: Path) -> None:
    """Configure the tracker's [logging]: INFO and above to ``log``, in
    Roundup's default format (which has the trace id)."""
    from roundup.configuration import CoreConfig

    config = CoreConfig(str(home))
    config.LOGGING_FILENAME = str(log)
    config.LOGGING_LEVEL = "INFO"
    config.save()
    assert "%(trace_id)s" in config.LOGGING_FORMAT


def serve(home: Path, port: int, access: Path) -> list[str]:
    """``roundup-wsgi serve`` trusting 127.0.0.1, access log to ``access``,
    the id in the response's X-Request-ID."""
    return serve_command(home, port, "--access-log", str(access))  # id header: default


def wait_for(path: Path, pattern: str, timeout: float = 20.0) -> re.Match[str]:
    """The first match of ``pattern`` in the file ``path``, once written."""
    deadline = time.monotonic() + timeout
    while True:
        text = path.read_text() if path.exists() else ""
        match = re.search(pattern, text, re.MULTILINE)
        if match is not None:
            return match
        assert time.monotonic() < deadline, f"{pattern!r} not in {path}:\n{text}"
        time.sleep(0.1)


def assert_followed(
    request_id: str, target: str, access: Path, roundup_log: Path
) -> None:
    """Our access log's line for ``target`` and Roundup's lines carry it."""
    line = wait_for(access, rf'^.*"GET {re.escape(target)} HTTP/1\.1" .*$').group(0)
    assert line.endswith(" " + request_id), line
    wait_for(roundup_log, rf"^\S+ \S+ {re.escape(request_id)} (INFO|WARNING|ERROR) ")


def assert_direct_client_ignored(port: int, access: Path) -> None:
    """A client reaching the application itself (127.0.0.2, not trusted)
    gets an id of the application's, not the one it sent."""
    connection = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=60, source_address=("127.0.0.2", 0)
    )
    try:
        connection.request(
            "GET", "/issue1?direct", headers={"X-Request-ID": "forged-77"}
        )
        response = connection.getresponse()
        response.read()
    finally:
        connection.close()
    assert response.status == 200
    assert response.getheader("X-Request-ID") not in (None, "forged-77")
    line = wait_for(access, r'^.*"GET /issue1\?direct HTTP/1\.1" .*$').group(0)
    assert "forged-77" not in line
    assert "forged-77" not in access.read_text()


def test_nginx_request_id_reaches_our_log_and_roundups(
    tmp_path: Path, tracker_template: Path
) -> None:
    nginx = require_program("nginx", "apt-get install nginx-light")
    openssl = require_program("openssl", "apt-get install openssl")
    app_port = free_port()
    site = NginxSite(nginx, openssl, tmp_path, app_port)
    web, cert, nginx_log = site.web, site.cert, site.log
    home = tracker(tracker_template, tmp_path / "bugs", web)
    roundup_log, access = tmp_path / "roundup.log", tmp_path / "access.log"
    log_roundup_to(home, roundup_log)
    logs = tmp_path / "logs"
    with (
        ServerProcess(serve(home, app_port, access), app_port, logs, name="app"),
        ListeningProcess(site.command, site.https_port, logs, name="nginx"),
        Session(verify=str(cert)) as browser,
    ):
        # A client's own X-Request-ID is replaced by nginx's $request_id.
        response = browser.get(
            web + "issue1?via=nginx", headers={"X-Request-ID": "mine"}
        )
        assert response.status_code == 200
        logged = wait_for(nginx_log, r'"GET /issue1\?via=nginx HTTP/1\.1" .* (\S+)$')
        request_id = logged.group(1)
        assert re.fullmatch(r"[0-9a-f]{32}", request_id), logged.group(0)
        assert response.headers["X-Request-ID"] == request_id
        assert_followed(request_id, "/issue1?via=nginx", access, roundup_log)
        assert "mine" not in access.read_text()
        assert_direct_client_ignored(app_port, access)
        # The recipe's http2: the tracker works over HTTP/2 through nginx.
        h2_visit(web, cert, tmp_path)


def test_haproxy_request_id_reaches_our_log_and_roundups(
    tmp_path: Path, tracker_template: Path
) -> None:
    haproxy = require_program("haproxy", "apt-get install haproxy")
    front, app1 = free_port(), free_port()
    web = f"http://127.0.0.1:{front}/"
    home = tracker(tracker_template, tmp_path / "bugs", web)
    roundup_log, access = tmp_path / "roundup.log", tmp_path / "access.log"
    log_roundup_to(home, roundup_log)
    config = checked_haproxy_config(
        haproxy,
        tmp_path / "haproxy.cfg",
        {
            "log /dev/log local0": "log stdout format raw local0",
            "bind :80": f"bind 127.0.0.1:{front}",
            "127.0.0.1:8081": f"127.0.0.1:{app1}",
            # one application server: the other is never started
            "    server app2 127.0.0.1:8082 cookie app2\n": "",
        },
    )
    logs = tmp_path / "logs"
    with (
        ServerProcess(serve(home, app1, access), app1, logs, name="app"),
        ListeningProcess(
            [haproxy, "-db", "-f", str(config)], front, logs, name="haproxy"
        ),
        Session() as browser,
    ):
        haproxy_log = logs / "haproxy.stdout.log"

        def through() -> str:
            response = browser.get(
                web + "issue1?via=haproxy", headers={"X-Request-ID": "mine"}
            )
            assert response.status_code in (200, 503)
            return str(response.status_code)

        # HAProxy sends nothing until its check found the server up.
        deadline = time.monotonic() + 30
        while through() != "200":
            assert time.monotonic() < deadline, "HAProxy never sent to the app"
            time.sleep(0.5)
        logged = wait_for(
            haproxy_log, r' 200 .*"GET /issue1\?via=haproxy HTTP/1\.1" (\S+)$'
        )
        request_id = logged.group(1)
        assert re.fullmatch(r"[0-9A-F]{8}:[0-9A-F]+_[0-9A-F:_]+", request_id), logged
        assert_followed(request_id, "/issue1?via=haproxy", access, roundup_log)
        assert "mine" not in access.read_text()
        assert_direct_client_ignored(app1, access)


def test_json_access_log_of_a_real_server(
    tmp_path: Path, tracker_template: Path
) -> None:
    """``roundup-wsgi serve --access-log-format json``: one JSON object per
    request, the Roundup user once logged in, secrets redacted, a hostile
    request still one line."""
    port = free_port()
    web = f"http://127.0.0.1:{port}/"
    home = tracker(tracker_template, tmp_path / "bugs", web)
    access = tmp_path / "access.log"
    command = [*serve(home, port, access), "--access-log-format", "json"]
    with (
        ServerProcess(command, port, tmp_path / "logs", name="app"),
        Session() as browser,
    ):
        log_in(browser, web)
        response = browser.get(
            web + "issue1?token=s3cr3t&x=1",
            headers={"User-Agent": 'evil" \\ \xff agent'},
        )
        assert response.status_code == 200
        wait_for(access, r"token=\*\*\*")
        lines = access.read_text().splitlines()
    entries = [json.loads(line) for line in lines]  # every line is one object
    entry = next(e for e in entries if e["path"] == "/issue1")
    assert entry["query"] == "token=***&x=1"
    assert entry["user"] == seeded.DEMO_USER
    assert entry["status"] == 200
    assert entry["request_id"] == response.headers["X-Request-ID"]
    # the byte 0xff is no UTF-8: shown as the text \xff
    assert entry["user_agent"] == 'evil" \\ \\xff agent'
    assert entry["tracker"] == "bugs"
    assert entry["bytes"] > 0
    assert "s3cr3t" not in access.read_text()
    assert seeded.DEMO_PASSWORD not in access.read_text()


def test_cluster_haproxy_request_id_reaches_the_app_hosts_log(
    tmp_path: Path, tracker_template: Path
) -> None:
    """deploy/cluster/haproxy.cfg (rewritten for loopback by
    helpers.cluster) in front of one app host of the cluster recipe
    (gunicorn with deploy/gunicorn.conf.py, its access log on stderr): the
    id HAProxy logs for a request is the one in the host's access log line,
    in Roundup's own log lines and in the response."""
    haproxy = require_program("haproxy", "apt-get install haproxy")
    front = free_port()
    web = f"http://127.0.0.1:{front}/"
    home = tracker(tracker_template, tmp_path / "bugs", web)
    roundup_log = tmp_path / "roundup.log"
    log_roundup_to(home, roundup_log)
    address = HOST_ADDRESSES[0]
    host = AppHost(
        "app1",
        address,
        free_port_on([address]),
        home,
        tmp_path / "hosts",
        env={"ROUNDUP_WSGI_SEND_REQUEST_ID": "on"},
    )
    balancer = Balancer(haproxy, [host], front, tmp_path / "haproxy")
    with ExitStack() as stack:
        stack.callback(host.cleanup)
        host.start()
        stack.callback(balancer.stop)
        balancer.start()
        with Session() as browser:
            response = browser.get(
                web + "issue1?via=cluster", headers={"X-Request-ID": "mine"}
            )
        assert response.status_code == 200
        logged = wait_for(
            balancer.log_file, r' 200 .*"GET /issue1\?via=cluster HTTP/1\.1" (\S+)$'
        )
        request_id = logged.group(1)
        assert re.fullmatch(r"[0-9A-F]{8}:[0-9A-F]+_[0-9A-F:_]+", request_id), logged
        assert response.headers["X-Request-ID"] == request_id
        assert_followed(request_id, "/issue1?via=cluster", host.log_file, roundup_log)
        assert "mine" not in host.log_file.read_text()
        assert balancer.failures() == []
