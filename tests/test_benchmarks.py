"""The benchmark suite's parts (benchmarks/): seeded tracker, wrk driver, table.

Nothing here is timed: these check that ``python -m benchmarks`` builds the
same tracker every time, talks to wrk correctly and prints what it measured.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from helpers import servers
from helpers.system import require_program
from roundup import instance

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # benchmarks/ is not installed, only run from here

from benchmarks import load, seed  # noqa: E402
from benchmarks.__main__ import Row, parse_args, ratio_text, render  # noqa: E402


def tracker_content(home: Path) -> list[tuple[str, list[str], list[bytes]]]:
    """Every issue's title, message texts and file contents."""
    db = instance.open(str(home)).open("admin")
    try:
        return [
            (
                db.issue.get(issue, "title"),
                [db.msg.get(m, "content") for m in db.issue.get(issue, "messages")],
                [db.file.get(f, "content") for f in db.issue.get(issue, "files")],
            )
            for issue in sorted(db.issue.list(), key=int)
        ]
    finally:
        db.close()


def test_seeded_tracker_is_deterministic(tmp_path: Path) -> None:
    first = seed.build_tracker(tmp_path / "a", 12, 4096)
    second = seed.build_tracker(tmp_path / "b", 12, 4096)
    assert first == second
    assert first.endswith(f"/{seed.BIG_FILE_NAME}")
    content = tracker_content(tmp_path / "a")
    assert content == tracker_content(tmp_path / "b")
    assert len(content) == 12
    assert all(1 <= len(messages) <= 3 for _, messages, _ in content)
    assert sum(len(files) for _, _, files in content) == 2  # issues 1 and 11
    db = instance.open(str(tmp_path / "a")).open("admin")
    try:
        big = Path(db.filename("file", first.split("/")[0][4:])).read_bytes()
    finally:
        db.close()
    assert big == bytes(range(256)) * 16
    assert "jwt_secret = " in (tmp_path / "a" / "config.ini").read_text()


def test_build_tracker_rejects_no_issues(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 1 issue"):
        seed.build_tracker(tmp_path / "t", 0, 1024)


@pytest.mark.parametrize(
    "text", ["plain", "a ]] b", "]=] and ]] and ]==]", 'quote " \\ back'], ids=str
)
def test_lua_long_string_holds_any_text(text: str) -> None:
    literal = load._lua_string(text)
    level = literal.index("[", 1)
    closing = "]" + "=" * (level - 1) + "]"
    assert literal.endswith(closing)
    assert literal[level + 1 : -len(closing)] == text
    assert closing not in text


def test_table_has_one_line_per_measurement() -> None:
    row = Row("waitress", "GET /issue", "req/s", [10.0, 12.0], [11.0, 13.0])
    row.off = [10.0, 10.0]
    row.cpu = {"stock": [50.0], "ours": [40.0], "off": [51.0]}
    row.latency = {
        "stock": [(100.0, 200.0)],
        "ours": [(90.0, 150.0)],
        "off": [(101.0, 201.0)],
    }
    ceiling = Row("waitress", "hello world (ceiling, no Roundup)", "req/s", [3000.0])
    ceiling.ours = [3000.0]
    memory = Row("waitress", "50 MiB file: peak RSS growth", "MiB", [100.0], [0.4])
    lines = render([ceiling, row, memory]).splitlines()
    # The header as printed, its columns' padding squeezed to one space.
    assert " ".join(lines[0].split()) == (
        "server measurement unit stock ours ours/stock reuse off off/stock "
        "CPU ms/req stock/ours/off CPU stock/ours p50 ms stock/ours/off "
        "p99 ms stock/ours/off"
    )
    assert "GET /issue" in lines[3]
    assert lines[3].split()[-9:] == [
        "11.0",
        "12.0",
        "1.09x",
        "10.0",
        "0.91x",
        "50.0/40.0/51.0",
        "1.25x",
        "100/90.0/101",
        "200/150/201",
    ]
    assert lines[2].split()[-5:] == ["3000", "3000", "-", "-", "-"]
    assert lines[4].split()[-5:] == ["100", "0.40", "0.004x", "-", "-"]
    assert ratio_text(0.5) == "0.50x"


def test_quick_settings() -> None:
    quick = parse_args(["--quick"])
    assert (quick.rounds, quick.seconds, quick.issues) == (1, 2, 500)
    assert quick.server_list == ["waitress", "gunicorn"]
    full = parse_args(["--servers", "gunicorn", "--issues", "50"])
    assert (full.rounds, full.seconds, full.server_list) == (3, 10, ["gunicorn"])
    with pytest.raises(SystemExit):
        parse_args(["--servers", "nginx"])


def test_instructions_needs_valgrind(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert not parse_args([]).instructions
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(SystemExit):
        parse_args(["--instructions"])
    assert "--instructions needs valgrind: apt-get install valgrind" in (
        capsys.readouterr().err
    )


@pytest.mark.slow
def test_wrk_driver_sends_method_headers_and_body(tmp_path: Path) -> None:
    """wrk through load.run_wrk against a real waitress: the Lua script sets
    the method, a header and the body, and its totals are parsed."""
    wrk = require_program("wrk", "apt-get install wrk")
    port = servers.free_port()
    echo = tmp_path / "echo_app.py"
    echo.write_text(
        "def application(environ, start_response):\n"
        "    size = int(environ.get('CONTENT_LENGTH') or 0)\n"
        "    body = environ['wsgi.input'].read(size)\n"
        "    ok = (environ['REQUEST_METHOD'] == 'POST'\n"
        "          and environ.get('HTTP_X_BENCH') == 'yes ]] \"quoted\"'\n"
        '          and body == b\'{"title": "x"}\')\n'
        "    start_response('200 OK' if ok else '400 Bad Request',\n"
        "                   [('Content-Length', '0')])\n"
        "    return [b'']\n"
    )
    command = [*servers.waitress_command(port, "echo_app:application")]
    env = {"PYTHONPATH": str(tmp_path)}
    with servers.ServerProcess(
        command, port, tmp_path / "logs", env=env, ready_path="/"
    ) as server:
        result = load.run_wrk(
            server.url,
            seconds=1,
            connections=2,
            method="POST",
            headers={"X-Bench": 'yes ]] "quoted"'},
            body=json.dumps({"title": "x"}),
            wrk=wrk,
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with pytest.raises(urllib.error.HTTPError, match="400"):
            opener.open(server.url)  # the control: a GET is refused
    assert result.requests > 0
    assert result.errors == 0  # every request was the POST the app expects
    assert result.rate > 0
    assert 0 < result.p50_ms <= result.p99_ms


def test_text_attachment_is_a_deterministic_log(tmp_path: Path) -> None:
    seed.build_tracker(tmp_path / "t", 2, 1024)
    path = seed.add_text_file(tmp_path / "t", 300_000)
    assert path.endswith(f"/{seed.TEXT_FILE_NAME}")
    db = instance.open(str(tmp_path / "t")).open("admin")
    try:
        file_id = path.split("/")[0][4:]
        content = Path(db.filename("file", file_id)).read_bytes()
        assert db.file.get(file_id, "type") == "text/plain"
    finally:
        db.close()
    assert content == seed.log_text(300_000)
    assert len(content) == 300_000
    assert content.startswith(b"2026-11-30 12:00:00 INFO worker-0 GET /issue0 ")


@pytest.mark.slow
def test_timed_download_decodes_gzip(tmp_path: Path) -> None:
    """load.timed_download counts the decoded bytes of a gzip answer."""
    port = servers.free_port()
    app = tmp_path / "gzip_app.py"
    app.write_text(
        "import gzip\n"
        "def application(environ, start_response):\n"
        "    body = b'x' * 100000\n"
        "    gz = 'gzip' in environ.get('HTTP_ACCEPT_ENCODING', '')\n"
        "    headers = [('Content-Encoding', 'gzip')] if gz else []\n"
        "    start_response('200 OK', headers)\n"
        "    return [gzip.compress(body) if gz else body]\n"
    )
    command = servers.waitress_command(port, "gzip_app:application")
    env = {"PYTHONPATH": str(tmp_path)}
    with servers.ServerProcess(
        command, port, tmp_path / "logs", env=env, ready_path="/"
    ) as server:
        for headers in (None, {"Accept-Encoding": "gzip"}):
            _, _, size = load.timed_download(server.url, headers=headers)
            assert size == 100000


def test_reset_peak_rss_lowers_the_peak_to_the_current_rss() -> None:
    """A 64 MiB allocation raises this process's peak; once freed and the
    peak reset, the peak is back near the current RSS."""
    import os

    pid = os.getpid()
    block = bytearray(64 * 1024 * 1024)
    block[::4096] = b"x" * len(block[::4096])
    high = load.peak_rss_kib(pid)
    del block
    load.reset_peak_rss(pid)
    assert load.peak_rss_kib(pid) < high - 32 * 1024


@pytest.mark.slow
def test_served_operations_load_both_servers(tmp_path: Path) -> None:
    """operations.measure_served under a real waitress: one CPU figure per
    round and side for each path, the "on" server logs one access line per
    request wrk made (and its own checks), the bare "off" server none."""
    from benchmarks import operations

    wrk = require_program("wrk", "apt-get install wrk")
    template = tmp_path / "template"
    seed.build_tracker(template, 3, 1024)
    rows = operations.measure_served(
        "waitress",
        servers.waitress_command,
        template,
        tmp_path,
        rounds=2,
        seconds=1,
        wrk=wrk,
    )
    assert [row.label for row in rows] == [
        f"waitress: {label}" for label, _, _, _ in operations.SERVED_PATHS
    ]
    for row in rows:
        assert len(row.off) == len(row.on) == 2
        assert all(value > 0 for value in row.off + row.on)
    on_log = (
        tmp_path / "log-ops-waitress-on" / "ops-waitress-on.stderr.log"
    ).read_text()
    off_log = (
        tmp_path / "log-ops-waitress-off" / "ops-waitress-off.stderr.log"
    ).read_text()
    for _, path, _, _ in operations.SERVED_PATHS:
        assert f'"GET {path} HTTP/1.1" 200 ' in on_log
        assert f'"GET {path} HTTP/1.1"' not in off_log


@pytest.mark.slow
def test_served_instructions_counts_gunicorn_under_valgrind(tmp_path: Path) -> None:
    """served_instructions under a real gunicorn run by valgrind: one count
    per side, the layers adding instructions, and the "on" servers' access
    logs holding exactly the requests made (the readiness poll's one, then
    the counted ones)."""
    from benchmarks import served_instructions

    require_program("valgrind", "apt-get install valgrind")
    template = tmp_path / "template"
    seed.build_tracker(template, 3, 1024)
    (count,) = served_instructions.measure(
        "gunicorn", template, tmp_path, requests=20, paths=("style.css",)
    )
    assert count.label.startswith("gunicorn, 1 sync worker: GET /@@file/style.css")
    assert 0 < count.off < count.on
    assert "+" in served_instructions.render([count])
    for requests in (4, 20):
        name = f"gunicorn-on-@@file-style.css-{requests}"
        log = (tmp_path / f"log-{name}" / f"{name}.stderr.log").read_text()
        assert log.count('"GET /@@file/style.css HTTP/1.1" 200 ') == requests + 1


def test_postgresql_settings() -> None:
    from benchmarks.__main__ import PG_REQUESTS, REQUESTS

    args = parse_args(["--postgresql", "--quick"])
    assert args.request_list is PG_REQUESTS
    assert parse_args([]).request_list is REQUESTS
    assert [
        r.label for r in parse_args(["--postgresql", "--only", "POST"]).request_list
    ]
    with pytest.raises(SystemExit):
        parse_args(["--postgresql", "--only", "style.css"])


@pytest.mark.slow
def test_postgresql_counts_and_form_post(tmp_path: Path) -> None:
    """``--postgresql``'s parts on a real PostgreSQL: the statements and
    connections per warm request (stock opens 4 connections per page, ours
    none), the cost of an open, and the form POST wrk repeats creating an
    issue each time with one session cookie."""
    from helpers import pg

    from benchmarks import pg_rows, serving
    from benchmarks.__main__ import PG_REQUESTS, Served, check

    with pg.running_postgres(tmp_path / "pg") as postgres:
        template = tmp_path / "template"
        pg_rows.build_template(postgres, template, 55)
        counts = {
            row.label: row for row in pg_rows.count_statements(template, ["issue"], 2)
        }
        index = counts["GET /issue"]
        assert index.connections == {"stock": 4, "reuse only": 0, "ours": 0}
        assert index.statements["ours"] * 10 <= index.statements["stock"]
        assert index.statements["reuse only"] * 10 > index.statements["stock"]
        assert "GET /issue" in pg_rows.render_counts(list(counts.values()))
        opening = pg_rows.opening_cost(template, rounds=3)
        assert opening["connections"] == 4
        assert opening["statements"] >= 1
        form = next(r for r in PG_REQUESTS if r.auth == "cookie")
        from contextlib import ExitStack

        with ExitStack() as stack:
            process = serving.serve_copy(
                stack,
                servers.waitress_command,
                servers.OUR_APP,
                template,
                tmp_path,
                "ours",
                {},
            )
            served = Served("ours", process)
            served.cookie = pg_rows.login_cookie(served.url)
            check(served, form)
            check(served, form)
        db = instance.open(str(template)).open("admin")
        try:
            titles = [db.issue.get(i, "title") for i in db.issue.list()]
        finally:
            db.close()
        assert titles.count("benchmark form issue") == 2


H2LOAD_OUTPUT = (
    "finished in 10.00s, 12345.67 req/s, 32.10MB/s\n"
    "requests: 123457 total, 123457 started, 123457 done, 123457 succeeded, "
    "0 failed, 0 errored, 0 timeout\n"
    "status codes: 123457 2xx, 0 3xx, 0 4xx, 0 5xx\n"
)


def test_h2load_summary_is_read_and_failures_refused() -> None:
    from benchmarks.http2 import BASELINE, CASES, parse_h2load
    from benchmarks.http2 import render as render_h2

    assert parse_h2load(H2LOAD_OUTPUT) == 12345.67
    with pytest.raises(ValueError, match="not every request"):
        parse_h2load(H2LOAD_OUTPUT.replace("123457 2xx", "123000 2xx"))
    with pytest.raises(ValueError, match="no summary"):
        parse_h2load("connect failed")
    rates = {case.label: [100.0, 110.0, 90.0] for case in CASES}
    rates[BASELINE] = [50.0, 50.0, 50.0]
    table = render_h2(rates).splitlines()
    assert len(table) == len(CASES) + 2
    assert table[2].endswith("2.00")
    assert table[-1].endswith("1.00")
