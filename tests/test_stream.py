"""RequestDispatcher's ``"stream"`` write mode, in-process against the seeded
tracker, and a write()-using application served by granian through
``iterable_only``.

(The 20,000-issue export under real servers is in test_csv_export.py; the
responses of every path in every write mode are compared in
test_dispatcher.py.)
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from wsgiref.util import FileWrapper
from wsgiref.validate import validator

import pytest
import requests
from apps import write_app
from helpers import seeded
from helpers.servers import ServerProcess, free_port, granian_command
from helpers.wsgi import (
    StartResponseRecorder,
    call_wsgi,
    live_greenlets,
    make_environ,
)
from roundup.cgi import client as roundup_client

from roundup_wsgi import RequestDispatcher
from roundup_wsgi.wsgi.adapters import MODES

EXPORT = "/issue?@action=export_csv&@columns=id,title&@sort=id"


@pytest.fixture(scope="module")
def stream_app(
    tmp_path_factory: pytest.TempPathFactory, tracker_template: Path
) -> RequestDispatcher:
    home = tmp_path_factory.mktemp("stream") / "tracker"
    seeded.copy_tracker(tracker_template, home, "http://localhost/")
    return RequestDispatcher(str(home), write_mode="stream")


@pytest.fixture
def main_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records how each ``Client.main`` ended: "returned" or the exception."""
    events: list[str] = []
    real_main = roundup_client.Client.main

    def main(self: Any) -> Any:
        try:
            result = real_main(self)
        except BaseException as error:
            events.append(type(error).__name__)
            raise
        events.append("returned")
        return result

    monkeypatch.setattr(roundup_client.Client, "main", main)
    return events


def test_export_rows_reach_the_server_one_by_one(
    stream_app: RequestDispatcher, main_calls: list[str]
) -> None:
    start_response = StartResponseRecorder()
    app_iter = validator(stream_app)(make_environ("GET", EXPORT), start_response)
    chunks = iter(app_iter)
    # Headers first; the first chunk (the CSV header row) arrives while
    # Roundup's Client.main is still running the export.
    assert [call[0] for call in start_response.calls] == ["200 OK"]
    assert next(chunks) == b'"id","title"\r\n'
    assert main_calls == []
    assert next(chunks) == b'"1","Sample issue one"\r\n'
    rest = list(chunks)
    app_iter.close()
    assert main_calls == ["returned"]
    # One chunk per row: issue2, issue3 and the "\n" ExportCSVAction returns.
    assert len(rest) == 3
    assert rest[-1] == b"\n"


def test_server_closing_early_interrupts_the_export(
    stream_app: RequestDispatcher, main_calls: list[str]
) -> None:
    greenlets = live_greenlets()
    app_iter = stream_app(make_environ("GET", EXPORT), lambda *args: None)
    assert next(iter(app_iter)) == b'"id","title"\r\n'
    app_iter.close()
    # GeneratorExit went through Roundup (its finally closed the database).
    assert main_calls == ["GeneratorExit"]
    assert live_greenlets() == greenlets
    assert call_wsgi(
        stream_app, make_environ("GET", "/issue"), server_write=False
    ).status


def test_error_after_partial_output_propagates_to_the_server(
    stream_app: RequestDispatcher,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    class FailingClient(stream_app.tracker.Client):  # type: ignore[misc,name-defined]
        def main(self) -> None:
            self.request.start_response([("Content-Type", "text/plain")], 200)
            self.request.wfile.write(b"partial ")
            raise RuntimeError("failed half-way")

    monkeypatch.setattr(stream_app.tracker, "Client", FailingClient)
    with caplog.at_level(logging.ERROR, logger="roundup_wsgi"):
        app_iter = stream_app(make_environ("GET", "/issue"), lambda *args: None)
        chunks = iter(app_iter)
        sent = next(chunks)
        with pytest.raises(RuntimeError, match="failed half-way"):
            next(chunks)
        app_iter.close()
    # The bytes already sent stay sent; the exception reached the server,
    # which aborts the response.  It was logged first.
    assert sent == b"partial "
    assert "GET /issue failed" in caplog.text


def test_error_before_output_is_a_500_page(
    stream_app: RequestDispatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    class FailingClient(stream_app.tracker.Client):  # type: ignore[misc,name-defined]
        def main(self) -> None:
            self.request.start_response([("Content-Type", "text/plain")], 200)
            raise RuntimeError("failed before writing")

    monkeypatch.setattr(stream_app.tracker, "Client", FailingClient)
    result = call_wsgi(stream_app, make_environ("GET", "/issue"), server_write=True)
    assert result.status == "500 Internal Server Error"
    assert b"failed before writing" not in result.body
    assert result.written == b""


def test_files_still_use_the_servers_file_wrapper(
    stream_app: RequestDispatcher,
) -> None:
    # (A file of more than one 64 KiB block: smaller ones are sent as one chunk.)
    env = make_environ("GET", "/file2/big.bin")
    env["wsgi.file_wrapper"] = FileWrapper
    app_iter = stream_app(env, lambda *args: None)
    assert isinstance(app_iter, FileWrapper)
    assert len(b"".join(app_iter)) == seeded.BIG_FILE_SIZE
    app_iter.close()


# -- a write()-using application under granian ---------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_granian_serves_a_write_app_through_iterable_only(
    tmp_path: Path, mode: str
) -> None:
    expected = (
        b"".join(write_app.body_line(n) for n in range(write_app.LINES))
        + write_app.TRAILER
    )
    port = free_port()
    env = {"WRITE_APP_MODE": mode}
    with (
        ServerProcess(
            granian_command(port, "write_app:application"),
            port,
            tmp_path,
            env=env,
            name=f"granian-write-app-{mode}",
        ) as server,
        requests.Session() as client,
    ):
        client.trust_env = False
        response = client.get(server.url, timeout=60)
    assert response.status_code == 200
    assert response.content == expected


@pytest.mark.slow
def test_granian_fails_the_raw_write_app(tmp_path: Path) -> None:
    # Without the adapter: granian's start_response returns None.
    port = free_port()
    with (
        ServerProcess(
            granian_command(port, "write_app:raw"), port, tmp_path, name="granian-raw"
        ) as server,
        requests.Session() as client,
    ):
        client.trust_env = False
        response = client.get(server.url, timeout=60)
    assert response.status_code == 500
