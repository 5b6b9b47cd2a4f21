"""Load, nothing lost: 16 concurrent clients create issues (message and
attachment each) through the web form and REST, under gunicorn (2 sync
workers) and waitress (4 threads: each thread reuses its database) with our
dispatcher, on sqlite and on a real PostgreSQL.

Afterwards every acknowledged issue is read back with Roundup's own API:
exact title, message text and attachment bytes; unacknowledged ones are
reported; no 5xx other than a 503 with ``Retry-After`` (which the clients
retry).  The run lasts ``ROUNDUP_WSGI_LOAD_SECONDS`` seconds (default 15;
the issue's full run is ``ROUNDUP_WSGI_LOAD_SECONDS=60``).  Figures are
written to ``test-artifacts/reliability/load-<backend>-<server>.json``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import loadclient, pg, seeded
from helpers.servers import (
    OUR_APP,
    ServerProcess,
    free_port,
    gunicorn_command,
    waitress_command,
)

from roundup_wsgi.tracker import create_tracker

pytestmark = pytest.mark.slow

#: Seconds of load (env ROUNDUP_WSGI_LOAD_SECONDS; the issue asks for 60).
LOAD_SECONDS = loadclient.load_seconds("ROUNDUP_WSGI_LOAD_SECONDS", 15)
CLIENTS = loadclient.CLIENTS
ARTIFACTS = loadclient.artifacts_dir("reliability")


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pg.PostgresServer]:
    with pg.running_postgres(tmp_path_factory.mktemp("pg-load")) as server:
        yield server


def make_tracker(
    backend: str,
    base: Path,
    web: str,
    request: pytest.FixtureRequest,
    database: str = "roundup_load",
) -> Path:
    home = base / "tracker"
    if backend == "postgresql":
        server = request.getfixturevalue("postgres")
        pg.create_pg_tracker(
            server,
            home,
            database,
            admin_password=seeded.ADMIN_PASSWORD,
            web=web,
        )
    else:
        create_tracker(home, admin_password=seeded.ADMIN_PASSWORD, web=web)
    return home


#: Server name -> (label, command).
LOAD_SERVERS = {
    "gunicorn": ("gunicorn, 2 sync workers", gunicorn_command),
    "waitress": ("waitress, 4 threads", waitress_command),
}


@pytest.mark.parametrize("server_name", list(LOAD_SERVERS))
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_concurrent_creation_loses_nothing(
    backend: str, server_name: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    label, command = LOAD_SERVERS[server_name]
    port = free_port()
    web = f"http://127.0.0.1:{port}/"
    home = make_tracker(backend, tmp_path, web, request, f"roundup_load_{server_name}")
    user_id = seeded.add_demo_user(home)
    result = loadclient.LoadResult()
    clients = loadclient.make_clients(loadclient.LoadClient, web, user_id, result)
    server = ServerProcess(
        command(port, OUR_APP),
        port,
        tmp_path / "logs",
        env={"ROUNDUP_TRACKER_HOME": str(home)},
        name=f"{server_name}-{backend}",
    )
    with server:
        loadclient.run_load(clients, LOAD_SECONDS, result)
        assert not server.stopped, server.log_tail()
    check = loadclient.verify_issues(str(home), result)

    figures = {
        "backend": backend,
        "server": label,
        "clients": CLIENTS,
        "seconds": LOAD_SECONDS,
        **result.summary(),
        **loadclient.verification_figures(check),
    }
    loadclient.write_figures(ARTIFACTS / f"load-{backend}-{server_name}.json", figures)

    assert not result.unexpected_5xx, (result.unexpected_5xx[:5], server.log_tail())
    assert not result.errors, (result.errors[:5], server.log_tail())
    assert not check.problems, check.problems[:10]
    assert result.acknowledged, "no issue was acknowledged"
    assert check.verified == len(result.acknowledged)
    assert {a.via for a in result.acknowledged} == {"form", "rest"}
