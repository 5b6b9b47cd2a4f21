"""Tests of roundup_wsgi.cli.server: binding waitress (TCP, a Unix socket)
and the graceful stop."""

from __future__ import annotations

import logging
import os
import socket
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers.cli import error_line
from helpers.servers import free_port
from helpers.wsgi import FakeServer

from roundup_wsgi import cli
from roundup_wsgi.cli.server import create_server, serve_until_stopped

#: urllib opener that ignores any ``*_proxy`` environment variables.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def test_serve_port_in_use(
    make_tracker: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        home = make_tracker(f"http://127.0.0.1:{port}/")
        assert cli.main(["serve", str(home), "--port", str(port)]) == 2
    line = error_line(capsys)
    assert f"cannot listen on 127.0.0.1:{port}" in line
    assert "--port" in line


def test_serve_passes_options_to_waitress_and_stops_on_ctrl_c(
    in_tmp: Path, serve: Callable[..., tuple[str, str]], servers_made: list[FakeServer]
) -> None:
    out, _ = serve("--port", "8124", "--threads", "2", "--write-mode", "server")
    (server,) = servers_made
    assert server.options == {
        "host": "127.0.0.1",
        "port": 8124,
        "threads": 2,
        "ident": "roundup-wsgi",
    }
    assert server.closed
    assert "(waitress, 2 threads, write mode server)" in out
    assert out.endswith("Stopped.\n")


def test_serve_logs_the_requests_it_waits_for_when_stopping(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A real waitress server, SIGTERM while a request is in progress."""
    import signal
    import threading

    import waitress

    from roundup_wsgi import health

    monkeypatch.setattr(health, "begin_stop", lambda: None)  # keep /-/ready
    caplog.set_level(logging.INFO, logger="roundup_wsgi")
    started = threading.Event()

    def slow(
        environ: dict[str, object], start_response: Callable[..., object]
    ) -> list[bytes]:
        started.set()
        time.sleep(1.5)  # the stop signal may wait for a 0.5 s poll
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    port = free_port()
    server = waitress.create_server(slow, host="127.0.0.1", port=port, threads=1)
    answers: list[int] = []

    def fetch() -> None:
        with OPENER.open(f"http://127.0.0.1:{port}/", timeout=10) as response:
            answers.append(response.status)

    client = threading.Thread(target=fetch)
    client.start()
    threading.Thread(
        target=lambda: started.wait(10) and os.kill(os.getpid(), signal.SIGTERM)
    ).start()
    serve_until_stopped(server, 5.0)
    client.join(10)
    assert answers == [200]
    messages = [
        r.getMessage() for r in caplog.records if r.name == "roundup_wsgi.serve"
    ]
    assert "stopping: no new connections accepted" in messages
    assert "stopping: waiting for 1 request in progress (at most 5 s)" in messages


def hello(
    environ: dict[str, object], start_response: Callable[..., object]
) -> list[bytes]:
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]


def test_create_server_on_a_unix_socket(tmp_path: Path) -> None:
    path = tmp_path / "roundup.sock"
    server = create_server(hello, "127.0.0.1", 8080, 1, str(path))
    try:
        assert server.adj.unix_socket == str(path)
        assert path.stat().st_mode & 0o777 == 0o660
        assert server.adj.clear_untrusted_proxy_headers is True
    finally:
        server.close()


def test_create_server_keeps_proxy_headers_for_a_trusted_proxy() -> None:
    server = create_server(hello, "127.0.0.1", 0, 1, keep_proxy_headers=True)
    try:
        assert server.adj.clear_untrusted_proxy_headers is False
        assert int(server.effective_port) > 0  # waitress: a str
    finally:
        server.close()


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("missing/r.sock", "the directory {tmp}/missing does not exist; create it"),
        ("file.txt", "a file that is not a socket is in the way; remove it"),
    ],
)
def test_create_server_refuses_a_bad_socket_path(
    tmp_path: Path, where: str, message: str
) -> None:
    (tmp_path / "file.txt").write_text("not a socket")
    path = tmp_path / where
    with pytest.raises(cli.CliError) as refused:
        create_server(hello, "127.0.0.1", 8080, 1, str(path))
    assert str(refused.value) == (
        f"--unix-socket {path}: {message.format(tmp=tmp_path)} or choose another path"
    )


def test_create_server_names_a_host_it_cannot_listen_on() -> None:
    with pytest.raises(cli.CliError) as refused:
        create_server(hello, "nosuchhost.invalid", 0, 1)
    assert str(refused.value).startswith("--host nosuchhost.invalid: cannot listen")
    assert str(refused.value).endswith("e.g. 127.0.0.1")
