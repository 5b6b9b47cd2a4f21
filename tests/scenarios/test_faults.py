"""Injected faults against real servers (subprocesses on loopback ports).

* 1000 downloads of a 5 MiB attachment aborted mid-body (half closed, half
  reset): the server's open file descriptors (``/proc/PID/fd``) and threads
  return to their baseline, RSS stays flat;
* an auditor that raises: 500 without a traceback in the body, logged in
  the server's log, and the next request succeeds;
* the tracker's ``db`` directory made read-only, and PostgreSQL stopped
  mid-run: 503 with ``Retry-After`` and the cause in the server's log, no
  hang, and the same requests succeed once the fault is gone;
* SIGTERM to gunicorn during load: gunicorn exits cleanly, every issue
  whose creation the server completed was acknowledged to its client, and
  no issue is stored half (without its message or attachment).

Figures go to ``test-artifacts/reliability/faults-*.json``.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import loadclient, pg, seeded
from helpers.faults import read_only, serve
from helpers.servers import (
    ServerProcess,
    gunicorn_command,
    waitress_command,
)

pytestmark = pytest.mark.slow

ARTIFACTS = loadclient.artifacts_dir("reliability")
ABORTED_DOWNLOADS = 1000
FILE_SIZE = 5 * 1024 * 1024  # bytes
#: Bytes of body a client reads before it aborts.
READ_BEFORE_ABORT = 256 * 1024
#: Seconds to wait for the server's fds/threads to settle after the aborts.
SETTLE_TIMEOUT = 30.0
#: Allowed RSS growth over 1000 aborted downloads (bytes): "flat".
RSS_SLACK = 16 * 1024 * 1024
#: Aborted downloads before the baseline is taken: waitress's send buffers
#: reach their high-water mark (about +15 MiB) within the first 200.
WARM_UP = 200
#: Seconds any request in these tests may take before it counts as a hang.
NO_HANG = 60.0


def write_figures(name: str, figures: dict[str, Any]) -> None:
    loadclient.write_figures(ARTIFACTS / f"faults-{name}.json", figures)


# -- /proc ---------------------------------------------------------------------


def child_pids(pid: int) -> list[int]:
    """PIDs of the direct children of ``pid`` (from /proc/*/stat)."""
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(entry))
    return children


def process_figures(pids: list[int]) -> dict[str, int]:
    """Open fds, threads and RSS (bytes) summed over ``pids``."""
    fds = threads = rss = 0
    for pid in pids:
        fds += len(os.listdir(f"/proc/{pid}/fd"))
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("Threads:"):
                    threads += int(line.split()[1])
                elif line.startswith("VmRSS:"):
                    rss += int(line.split()[1]) * 1024
    return {"fds": fds, "threads": threads, "rss": rss}


def server_pids(server: ServerProcess) -> list[int]:
    """The server's process and, for a pre-fork server, its workers."""
    assert server.proc is not None
    return [server.proc.pid, *child_pids(server.proc.pid)]


# -- trackers and servers --------------------------------------------------------


# -- 1. aborted downloads ------------------------------------------------------------


def aborted_download(port: int, path: str, reset: bool) -> None:
    """GET ``path``, read the headers and :data:`READ_BEFORE_ABORT` body
    bytes, then close (``reset``: with an RST, SO_LINGER 0)."""
    with socket.create_connection(("127.0.0.1", port), timeout=NO_HANG) as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Accept-Encoding: identity\r\n\r\n".encode()
        )
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed before the headers: {received!r}"
            received += chunk
        head, body = received.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 200"), head
        assert f"content-length: {FILE_SIZE}".encode() in head.lower(), head
        got = len(body)
        while got < READ_BEFORE_ABORT:
            chunk = sock.recv(65536)
            assert chunk, "connection closed before the abort"
            got += len(chunk)
        if reset:
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )


@pytest.mark.parametrize(
    ("server_name", "command"),
    [("waitress", waitress_command), ("gunicorn", gunicorn_command)],
)
def test_aborted_downloads_leak_nothing(
    server_name: str,
    command: Callable[[int, str], list[str]],
    tmp_path: Path,
    make_tracker: Callable[[str], Path],
) -> None:
    content = seeded.pattern_bytes(FILE_SIZE)
    file_path: list[str] = []

    def home_for(web: str) -> Path:
        home = make_tracker(web)
        title = "Issue with a 5 MiB attachment"
        file_path.append(seeded.add_file(home, "five.bin", content, issue_title=title))
        return home

    with serve(command, home_for, tmp_path / "logs", server_name) as (server, _):
        path = "/" + file_path[0]
        session = loadclient.Session()
        errors: list[str] = []

        def abort_downloads(count: int) -> None:
            def worker(start: int) -> None:
                for n in range(start, count, 4):
                    try:
                        aborted_download(server.port, path, reset=n % 2 == 0)
                    except (OSError, AssertionError) as error:
                        errors.append(f"download {n}: {error!r}")

            threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(NO_HANG * 5)
                assert not thread.is_alive(), "an aborted download hangs"
            assert not errors, errors[:5]

        # Warm up: every worker thread/process has served downloads and the
        # server's buffers have reached their high-water mark.
        abort_downloads(WARM_UP)
        assert session.get(server.url + path.lstrip("/")).content == content
        time.sleep(1)
        before = process_figures(server_pids(server))
        rss_samples = []
        for _ in range(4):
            abort_downloads(ABORTED_DOWNLOADS // 4)
            rss_samples.append(process_figures(server_pids(server))["rss"])

        # The server notices the aborts asynchronously: let it settle.
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while True:
            after = process_figures(server_pids(server))
            settled = (
                after["fds"] <= before["fds"] and after["threads"] <= before["threads"]
            )
            if settled or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        # Still serving, and the right bytes.
        assert session.get(server.url + path.lstrip("/")).content == content

    write_figures(
        f"aborted-downloads-{server_name}",
        {
            "server": server_name,
            "aborted_downloads": ABORTED_DOWNLOADS,
            "file_bytes": FILE_SIZE,
            "warm_up_downloads": WARM_UP,
            "before": before,
            "after": after,
            "rss_every_250": rss_samples,
        },
    )
    assert after["fds"] <= before["fds"], (before, after)
    assert after["threads"] <= before["threads"], (before, after)
    assert after["rss"] - before["rss"] < RSS_SLACK, (before, after)


# -- 2. an auditor that raises -----------------------------------------------------


def form_client(server: ServerProcess, user_id: str = "3") -> loadclient.LoadClient:
    client = loadclient.LoadClient(
        server.url,
        seeded.DEMO_USER,
        seeded.DEMO_PASSWORD,
        user_id,
        "form",
        "fault",
        loadclient.LoadResult(),
    )
    client.login()
    return client


def post_new_issue(client: loadclient.LoadClient, title: str) -> Any:
    """Post the new-issue form (no retry on 503); return the response (the
    new-issue page's if that already fails)."""
    page = client.session.get(client.web + "issue?@template=item")
    if page.status_code != 200:
        return page
    return client.session.post(
        client.web + "issue",
        data={
            "@action": "new",
            "@csrf": loadclient.csrf_token(page.text),
            "title": title,
            "priority": "3",
            "@note": loadclient.expected_message(title),
        },
        files={"@file": ("a.bin", loadclient.expected_file(title))},
        headers={"Origin": client.origin, "Referer": client.web + "issue"},
        allow_redirects=False,
    )


def test_auditor_exception_is_a_logged_500(
    tmp_path: Path, make_tracker: Callable[[str], Path]
) -> None:
    def home_for(web: str) -> Path:
        return seeded.install_failing_auditor(make_tracker(web))

    with serve(gunicorn_command, home_for, tmp_path / "logs", "gunicorn") as (
        server,
        _,
    ):
        client = form_client(server)
        failed = post_new_issue(client, "boom from a real server")
        assert failed.status_code == 500
        assert "Traceback" not in failed.text
        assert "<script>alert(1)" not in failed.text
        assert "the error has been logged" in failed.text
        ok = post_new_issue(client, "works after the boom")
        assert ok.status_code == 302, ok.text[:500]
        log = server.stderr_log.read_text(errors="replace")
        assert "failed in tracker" in log
        assert "RuntimeError: auditor failed" in log


# -- 3. read-only db directory, PostgreSQL stopped ---------------------------------


def rest_create(session: loadclient.Session, web: str, title: str) -> Any:
    return session.post(
        web + "rest/data/issue",
        json={"title": title, "priority": "3"},
        headers={
            "X-Requested-With": "rest",
            "Origin": web.rstrip("/"),
            "Referer": web,
        },
        auth=("admin", seeded.ADMIN_PASSWORD),
        timeout=NO_HANG,
    )


def assert_unavailable(response: Any) -> None:
    """A clear 503 with Retry-After, or at least a 500 with no traceback."""
    assert response.status_code in (500, 503), (response.status_code, response.text)
    if response.status_code == 503:
        assert response.headers.get("Retry-After"), response.headers
    assert "Traceback" not in response.text


def test_read_only_db_directory_then_restored(
    tmp_path: Path, make_tracker: Callable[[str], Path]
) -> None:
    # reuse_db off: every request opens the database, which fails while the
    # directory is read-only.  (With reuse_db, a worker's connection opened
    # before still writes: the next test.)
    with serve(
        gunicorn_command,
        make_tracker,
        tmp_path / "logs",
        "gunicorn",
        env={"ROUNDUP_WSGI_REUSE_DB": "false"},
    ) as (server, home):
        client = form_client(server)
        session = loadclient.Session()
        assert rest_create(session, server.url, "before").status_code == 201
        with read_only(home / "db"):
            form_reply = post_new_issue(client, "while read-only (form)")
            rest_reply = rest_create(session, server.url, "while read-only (rest)")
        assert_unavailable(form_reply)
        assert_unavailable(rest_reply)
        log = server.stderr_log.read_text(errors="replace")
        assert "unavailable, answered 503" in log, log[-3000:]
        # Restored: the same requests succeed.
        assert post_new_issue(client, "after restore (form)").status_code == 302
        assert rest_create(session, server.url, "after").status_code == 201
    write_figures(
        "read-only-db",
        {"form": form_reply.status_code, "rest": rest_reply.status_code},
    )


def test_read_only_db_directory_with_reuse_db(
    tmp_path: Path, make_tracker: Callable[[str], Path]
) -> None:
    """With ``reuse_db`` (the default) a worker whose sqlite connection was
    opened before the directory became read-only can still write (its WAL
    files exist); a worker that must open one answers 503.  Either way
    nothing acknowledged is lost and nothing fails unclearly."""
    with serve(gunicorn_command, make_tracker, tmp_path / "logs", "gunicorn") as (
        server,
        home,
    ):
        session = loadclient.Session()
        assert rest_create(session, server.url, "before").status_code == 201
        with read_only(home / "db"):
            replies = [
                rest_create(session, server.url, f"while read-only {n}")
                for n in range(4)
            ]
        for reply in replies:
            if reply.status_code != 201:
                assert_unavailable(reply)
        assert rest_create(session, server.url, "after").status_code == 201
    from roundup import instance

    db = instance.open(str(home)).open("admin")
    try:
        titles = [db.issue.get(i, "title") for i in db.issue.list()]
    finally:
        db.close()
    for n, reply in enumerate(replies):
        stored = f"while read-only {n}" in titles
        assert stored == (reply.status_code == 201), (n, reply.status_code)


def test_postgresql_stopped_mid_run_then_restarted(tmp_path: Path) -> None:
    with pg.running_postgres(tmp_path / "pg") as postgres:

        def home_for(web: str) -> Path:
            home = pg.create_pg_tracker(
                postgres,
                tmp_path / "tracker",
                "roundup_faults",
                admin_password=seeded.ADMIN_PASSWORD,
                web=web,
            )
            seeded.add_demo_user(home)
            return home

        with serve(gunicorn_command, home_for, tmp_path / "logs", "gunicorn") as (
            server,
            _,
        ):
            session = loadclient.Session()
            assert rest_create(session, server.url, "before").status_code == 201
            client = form_client(server)
            postgres.stop()
            start = time.monotonic()
            page = session.get(server.url, timeout=NO_HANG)
            rest_reply = rest_create(session, server.url, "while stopped")
            form_page = client.session.get(client.web + "issue?@template=item")
            elapsed = time.monotonic() - start
            for reply in (page, rest_reply, form_page):
                assert reply.status_code == 503, (reply.status_code, reply.text[:500])
                assert reply.headers["Retry-After"]
                assert "PostgreSQL" not in reply.text  # the cause: log only
            log = server.stderr_log.read_text(errors="replace")
            assert "PostgreSQL: " in log
            assert "unavailable, answered 503" in log

            postgres.start()
            assert session.get(server.url).status_code == 200
            assert rest_create(session, server.url, "after").status_code == 201
            assert post_new_issue(client, "after restart (form)").status_code == 302
    write_figures(
        "postgresql-stopped",
        {
            "statuses_while_stopped": [
                page.status_code,
                rest_reply.status_code,
                form_page.status_code,
            ],
            "seconds_for_three_requests_while_stopped": round(elapsed, 2),
        },
    )


# -- 4. SIGTERM during load ------------------------------------------------------------


def test_sigterm_during_load_finishes_in_flight_requests(
    tmp_path: Path, make_tracker: Callable[[str], Path]
) -> None:
    result = loadclient.LoadResult()
    with serve(gunicorn_command, make_tracker, tmp_path / "logs", "gunicorn") as (
        server,
        home,
    ):
        clients = loadclient.make_clients(
            loadclient.LoadClient, server.url, "3", result, count=8
        )
        stop = threading.Event()
        threads = [threading.Thread(target=c.run, args=(stop,)) for c in clients]
        for thread in threads:
            thread.start()
        time.sleep(5)
        assert server.proc is not None
        server.proc.send_signal(signal.SIGTERM)
        exit_code = server.proc.wait(timeout=NO_HANG)
        stop.set()
        for thread in threads:
            thread.join(NO_HANG)
            assert not thread.is_alive(), "a client hangs after SIGTERM"
    check = loadclient.verify_issues(str(home), result)
    truncated = [
        e for e in result.errors if "ChunkedEncoding" in e or "Incomplete" in e
    ]
    write_figures(
        "sigterm",
        {
            "gunicorn_exit_code": exit_code,
            **result.summary(),
            "issues_verified": check.verified,
            "stored_but_unacknowledged": check.unacknowledged_but_stored,
            "problems": check.problems,
            "client_errors_after_sigterm": result.errors,
        },
    )
    assert exit_code == 0
    assert result.acknowledged
    assert not truncated, truncated
    assert not check.problems, check.problems
    # A write the server completed was answered to its client.
    assert not check.unacknowledged_but_stored, check.unacknowledged_but_stored
    assert not result.unexpected_5xx, result.unexpected_5xx
