"""Trackers that cannot serve a page are refused at start, reported by
``check`` and failed by ``/-/ready``, and nothing creates their database
(issue 24, item 2).

The trackers are what ``roundup-admin install classic sqlite`` makes
(Roundup's ``init.install``), without ``initialise``: first as installed
(``[tracker] web``, ``[mail] domain`` and ``host`` unset), then with those
set; and one whose database holds a schema but no users (what a first
request made of such a tracker before).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.checks import by_check
from helpers.servers import free_port
from webtest import TestApp

from roundup_wsgi.app import find_layer, make_app
from roundup_wsgi.cli.check import run_checks
from roundup_wsgi.cli.command import main
from roundup_wsgi.dbstate import INITIALISED, NOT_INITIALISED, database_state
from roundup_wsgi.dispatcher import RequestDispatcher
from roundup_wsgi.health import Operations
from roundup_wsgi.install import list_templates
from roundup_wsgi.tracker import TrackerHomeError, TrackerNotReadyError

SET = {
    "tracker_web": "http://localhost/",
    "mail_domain": "localhost",
    "mail_host": "localhost",
}


def installed(home: Path, settings: dict[str, str] | None = None) -> Path:
    """``roundup-admin install classic sqlite [settings]``, not initialised."""
    from roundup import init

    home.mkdir()
    init.install(
        str(home),
        list_templates()["classic"],
        settings={"rdbms_backend": "sqlite", **(settings or {})},
    )
    return home


def nothing_created(home: Path) -> bool:
    return not (home / "db").exists()


def test_an_installed_tracker_is_refused_naming_the_options(tmp_path: Path) -> None:
    home = installed(tmp_path / "bugs")
    with pytest.raises(TrackerNotReadyError) as raised:
        make_app(home)
    message = str(raised.value)
    assert "\n" not in message
    assert "[tracker] web, [mail] domain, [mail] host are not set" in message
    assert str(home / "config.ini") in message
    assert isinstance(raised.value, TrackerHomeError)  # a ValueError
    assert nothing_created(home)


def test_a_tracker_not_initialised_is_refused_naming_the_fix(tmp_path: Path) -> None:
    home = installed(tmp_path / "bugs", SET)
    with pytest.raises(TrackerNotReadyError) as raised:
        RequestDispatcher(str(home))
    assert f"run 'roundup-admin -i {home} initialise'" in str(raised.value)
    assert "does not exist" in str(raised.value)
    assert nothing_created(home)


def empty_database(home: Path) -> None:
    """What a first request made of an uninitialised tracker: the schema,
    no users."""
    from roundup import instance

    db = instance.open(str(home)).open("admin")
    db.commit()
    db.close()


def test_a_database_without_users_is_refused(tmp_path: Path) -> None:
    home = installed(tmp_path / "bugs", SET)
    empty_database(home)
    before = (home / "db" / "db").read_bytes()
    with pytest.raises(TrackerNotReadyError, match="has no anonymous user"):
        make_app(home)
    assert (home / "db" / "db").read_bytes() == before
    check = by_check(run_checks(home))["backend"]
    assert check.ok is False
    assert "has no anonymous user" in check.message
    assert "initialise" in check.fix


def test_database_state_of_a_good_tracker(tracker_home: Path) -> None:
    from roundup.configuration import CoreConfig

    assert database_state(CoreConfig(str(tracker_home))) == (INITIALISED, "")


@pytest.mark.parametrize(
    "flags", [[], ["--url", "http://localhost/"], ["--cluster"]], ids=str
)
def test_check_reports_unset_options_without_a_traceback(
    tmp_path: Path, flags: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    home = installed(tmp_path / "bugs")
    assert main(["check", str(home), *flags]) == 1
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err
    assert "FAIL  required options: [tracker] web, [mail] domain" in out.out
    assert "FAIL  backend: the sqlite database of this tracker is not" in out.out
    assert f"run 'roundup-admin -i {home} initialise'" in out.out
    assert "FAIL  tracker web: [tracker] web is not set" in out.out
    assert nothing_created(home)


def test_check_never_creates_the_database(tmp_path: Path) -> None:
    home = installed(tmp_path / "bugs", SET)
    findings = by_check(run_checks(home, url="http://localhost/"))
    assert findings["required options"].ok is True
    assert findings["backend"].ok is False
    assert nothing_created(home)
    # Nor on a second run: a first one used to leave a database behind.
    assert by_check(run_checks(home))["backend"].ok is False


@pytest.mark.parametrize("settings", [{}, SET], ids=["installed", "web set"])
def test_serve_refuses_with_one_line_and_status_2(
    tmp_path: Path,
    settings: dict[str, str],
    servers_made: list[object],
    capsys: pytest.CaptureFixture[str],
) -> None:
    home = installed(tmp_path / "bugs", settings)
    assert main(["serve", str(home), "--port", "0"]) == 2
    errors = [
        line
        for line in capsys.readouterr().err.splitlines()
        if line.startswith("roundup-wsgi: error:")
    ]
    assert len(errors) == 1, errors
    assert "[tracker] web" in errors[0] or "initialise" in errors[0]
    assert nothing_created(home)


def test_the_environment_app_names_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from roundup_wsgi.app import ConfigError, LazyApplication

    home = installed(tmp_path / "bugs", SET)
    monkeypatch.setenv("ROUNDUP_TRACKER_HOME", str(home))
    with pytest.raises(ConfigError, match="initialise"):
        LazyApplication().build()
    assert nothing_created(home)


def test_ready_fails_and_creates_nothing_when_the_database_goes(
    tracker_home: Path,
) -> None:
    app = make_app(tracker_home)
    web = TestApp(app, extra_environ={"REMOTE_ADDR": "127.0.0.1"})
    assert web.get("/-/ready").json["status"] == "ok"
    for readiness in find_layer(app, Operations).readiness.values():
        readiness.interval = 0
    os.unlink(tracker_home / "db" / "db")
    answer = web.get("/-/ready", status=503)
    assert answer.json["checks"]["database"] == "not initialised"
    assert not (tracker_home / "db" / "db").exists()


@pytest.mark.slow
def test_serve_command_refuses_a_tracker_not_initialised(tmp_path: Path) -> None:
    """The real command, as a new user runs it: it exits 2 at once with one
    line (it served every page as 500 before)."""
    home = installed(tmp_path / "bugs", SET)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "roundup_wsgi",
            "serve",
            str(home),
            "--port",
            str(free_port()),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"roundup-wsgi: error: the tracker {home} is not initialised (the "
        f"database {home}/db/db does not exist): run 'roundup-admin -i {home} "
        "initialise'"
    )
    assert nothing_created(home)


@pytest.mark.slow
def test_postgresql_database_missing_is_refused_and_not_created(
    tmp_path: Path,
) -> None:
    from helpers import pg

    with pg.running_postgres(tmp_path / "pg") as server:
        settings = {**SET, "rdbms_backend": "postgresql"}
        settings.update({k: str(v) for k, v in server.rdbms_settings("bugs").items()})
        home = installed(tmp_path / "bugs", settings)
        with pytest.raises(TrackerNotReadyError, match="database bugs does not"):
            make_app(home)
        assert by_check(run_checks(home))["backend"].ok is False
        from roundup.backends import back_postgresql
        from roundup.configuration import CoreConfig

        config = CoreConfig(str(home))
        assert not back_postgresql.db_exists(config)
        # Created but empty (as a DBA's createdb leaves it): no schema.
        back_postgresql.db_create(config)
        state, detail = database_state(config)
        assert (state, "has no schema" in detail) == (NOT_INITIALISED, True)
        with pytest.raises(TrackerNotReadyError, match="has no schema"):
            make_app(home)


@pytest.mark.slow
def test_gunicorn_recipe_refuses_a_tracker_not_initialised(tmp_path: Path) -> None:
    """gunicorn with ``deploy/gunicorn.conf.py`` builds the application as
    each worker starts, so it stops at start ("Worker failed to boot") with
    the line naming the fix, instead of serving every page as 500."""
    home = installed(tmp_path / "bugs", SET)
    config = Path(__file__).resolve().parent.parent / "deploy" / "gunicorn.conf.py"
    environment = dict(os.environ, ROUNDUP_TRACKER_HOME=str(home))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            str(config),
            "-b",
            f"127.0.0.1:{free_port()}",
            "-w",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=environment,
    )
    assert done.returncode != 0, done.stderr
    assert f"run 'roundup-admin -i {home} initialise'" in done.stderr
    assert "Worker failed to boot" in done.stderr
    assert nothing_created(home)
