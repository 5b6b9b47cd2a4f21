"""A 20,000-issue CSV export (Roundup's ``@action=export_csv``) under real
servers, waitress and granian, in every write mode: the same bytes
everywhere; in ``"stream"`` mode the first bytes reach the client while
Roundup is still exporting, and a client going away interrupts the export.

The tracker is seeded once per session (tests/big_tracker.py); each
(server, write mode) is started once, on its own copy, and stopped by PID.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
import roundup.instance
from helpers import big_tracker, seeded
from helpers.servers import OUR_APP, SERVERS, ServerProcess, free_port
from helpers.wsgi import call_wsgi, make_environ

from roundup_wsgi import RequestDispatcher
from roundup_wsgi.options import WRITE_MODES

pytestmark = pytest.mark.slow

#: Seconds any HTTP read may take.
TIMEOUT = 60.0
#: (server, write mode): every write mode under a server with a write
#: callable (waitress) and one without (granian).
CONFIGS = [(name, mode) for name in ("waitress", "granian") for mode in WRITE_MODES]
#: The (server, write mode) pairs whose export starts before it ends.
GATED = [
    (name, mode) for name in ("waitress", "granian") for mode in ("stream", "auto")
]


@pytest.fixture(scope="session")
def big_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 20,000-issue tracker, built once per session (read-only)."""
    home = tmp_path_factory.mktemp("big") / "tracker"
    return big_tracker.build_big_tracker(home)


@pytest.fixture(scope="module")
def reference(big_template: Path, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The export, in-process, buffer mode; checked against the seed data."""
    home = seeded.copy_tracker(
        big_template, tmp_path_factory.mktemp("ref") / "tracker", "http://localhost/"
    )
    environ = make_environ("GET", "/" + big_tracker.EXPORT_PATH)
    result = call_wsgi(RequestDispatcher(str(home)), environ, server_write=False)
    assert result.status == "200 OK"
    lines = result.body.decode("utf-8").split("\r\n")
    assert lines[0] == '"id","title","status","priority"'
    assert len(lines) == big_tracker.ISSUES + 2  # header, issues, Roundup's "\n"
    db = roundup.instance.open(str(home)).open("admin")
    try:
        for number in (1, 17, big_tracker.ISSUES):
            title = big_tracker.issue_title(number).replace('"', '""')
            status = db.status.get(str(1 + number % 8), "name")
            priority = db.priority.get(str(1 + number % 5), "name")
            row = f'"{number}","{title}","{status}","{priority}"'
            assert lines[number] == row
    finally:
        db.close()
    return result.body


@pytest.fixture(scope="module")
def start(
    big_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[str, str], ServerProcess]]:
    """``start(server, write_mode)``: our dispatcher on a copy of the big
    tracker, started once per pair and stopped by PID after the module."""
    running: dict[tuple[str, str], ServerProcess] = {}

    def get(name: str, mode: str) -> ServerProcess:
        if (name, mode) not in running:
            port = free_port()
            base = tmp_path_factory.mktemp(f"{name}-{mode}")
            home = seeded.copy_tracker(
                big_template, base / "tracker", f"http://127.0.0.1:{port}/"
            )
            process = ServerProcess(
                SERVERS[name](port, OUR_APP),
                port,
                base / "logs",
                env={
                    "ROUNDUP_TRACKER_HOME": str(home),
                    "ROUNDUP_WSGI_WRITE_MODE": mode,
                },
                name=f"{name}-{mode}",
            )
            running[name, mode] = process
            process.start()
        return running[name, mode]

    try:
        yield get
    finally:
        for process in running.values():
            process.stop()
        assert all(process.stopped for process in running.values())


@pytest.fixture(params=GATED, ids=[f"{n}-{m}" for n, m in GATED])
def gated_server(
    request: pytest.FixtureRequest, start: Callable[[str, str], ServerProcess]
) -> ServerProcess:
    """The server of each :data:`GATED` pair (the tests hold its export at
    the big tracker's gate)."""
    return start(*request.param)


def session() -> requests.Session:
    client = requests.Session()
    client.trust_env = False  # no proxies: traffic stays on 127.0.0.1
    return client


@pytest.mark.parametrize(
    ("name", "mode"), CONFIGS, ids=[f"{n}-{m}" for n, m in CONFIGS]
)
def test_export_is_the_same_everywhere(
    start: Callable[[str, str], ServerProcess], reference: bytes, name: str, mode: str
) -> None:
    server = start(name, mode)
    with session() as client:
        response = client.get(server.url + big_tracker.EXPORT_PATH, timeout=TIMEOUT)
    assert response.status_code == 200, server.log_tail()
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.content == reference


def wait_for(path: Path, seconds: float = TIMEOUT) -> bool:
    """Wait (bounded) until ``path`` exists; readiness only, no timing claim."""
    deadline = time.monotonic() + seconds
    while not path.exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_stream_mode_sends_the_first_bytes_while_exporting(
    gated_server: ServerProcess, reference: bytes, tmp_path: Path
) -> None:
    # The tracker's gate (tests/big_tracker.py) holds the export after its
    # first row until the file `gate` exists, and only this test creates
    # it, after the first bytes have arrived: so they arrived while Roundup
    # was still exporting (in buffer mode this request would never start).
    # In "auto" mode too: the export has no Content-Length, so its first
    # write starts the response.
    server = gated_server
    gate = tmp_path / "gate"
    waiting = Path(f"{gate}.waiting")
    passed = Path(f"{gate}.passed")
    headers = {big_tracker.GATE_HEADER: str(gate)}
    with (
        session() as client,
        client.get(
            server.url + big_tracker.EXPORT_PATH,
            headers=headers,
            stream=True,
            timeout=TIMEOUT,
        ) as response,
    ):
        assert response.status_code == 200
        chunks = response.iter_content(chunk_size=None)
        first = next(chunks)
        assert first
        assert wait_for(waiting), "the export never reached its gate"
        assert not passed.exists()
        gate.touch()  # let the export go on
        body = first + b"".join(chunks)
    assert passed.exists()
    assert body == reference


def test_client_going_away_interrupts_a_streamed_export(
    gated_server: ServerProcess, reference: bytes, tmp_path: Path
) -> None:
    # The client reads the first bytes and disconnects while the export is
    # held at its gate; once the gate opens, Roundup's next write raises
    # GeneratorExit (the server closed the app_iter) instead of exporting
    # 20,000 rows to nobody.
    server = gated_server
    gate = tmp_path / "gate"
    request = (
        f"GET /{big_tracker.EXPORT_PATH} HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{server.port}\r\n"
        f"{big_tracker.GATE_HEADER}: {gate}\r\n"
        "Connection: close\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
        sock.sendall(request.encode())
        received = b""
        while b'"id","title"' not in received:  # the header row: body started
            data = sock.recv(65536)
            assert data, received
            received += data
        assert received.startswith(b"HTTP/1.1 200 OK\r\n")
        assert wait_for(Path(f"{gate}.waiting"))
    gate.touch()
    assert wait_for(Path(f"{gate}.interrupted")), server.log_tail()
    # The server goes on serving.
    with session() as client:
        again = client.get(server.url + big_tracker.EXPORT_PATH, timeout=TIMEOUT)
    assert again.content == reference
