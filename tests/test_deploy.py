"""The deploy/ recipes, each started for real on loopback ports.

Every recipe serves copies of the seeded tracker and passes
:func:`deploy.use_tracker`: an issue page, a login through the
form, an issue created through the form, an attachment downloaded.  Paths
and ports in the recipes are rewritten to the test's (asserting the recipe
still has them); servers are stopped by PID (tests/servers.py).
"""

from __future__ import annotations

import http.client
import os
import pwd
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from helpers import seeded
from helpers.deploy import (
    DEPLOY_DIR,
    ListeningProcess,
    NginxSite,
    Session,
    checked_haproxy_config,
    child_users,
    parse_unit,
    readable_python,
    recipe,
    rewrite,
    serve_command,
    tracker,
    use_tracker,
    user_exists,
    venv_program,
)
from helpers.servers import ServerProcess, free_port
from helpers.system import require_program
from requests import Response

from roundup_wsgi.cli.wsgi_script import wsgi_script

pytestmark = pytest.mark.slow

#: Seconds a server may take to answer its first request (Apache, uWSGI and
#: nginx start several processes; the machine is shared).
START = 90.0


@pytest.fixture(autouse=True)
def _no_tracker_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The servers started here get only the variables each test gives
    (ServerProcess passes ours on): none from the developer's shell."""
    for name in list(os.environ):
        if name in ("ROUNDUP_TRACKER_HOME", "ROUNDUP_TRACKERS") or name.startswith(
            "ROUNDUP_WSGI_"
        ):
            monkeypatch.delenv(name)


@contextmanager
def two_trackers_served(
    tmp_path: Path,
    template: Path,
    name: str,
    command: Callable[[int, dict[str, Path]], list[str]],
) -> Iterator[tuple[str, Session, Response]]:
    """Trackers ``bugs`` and ``support`` (web ``<base><name>/``) served by
    ``command(port, homes)`` on a free port; stopped by PID on leaving.

    :returns: (yields) ``(base URL, a session, the response to GET base)``.
    """
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    homes = {
        tracker_name: tracker(
            template, tmp_path / tracker_name, f"{base}{tracker_name}/"
        )
        for tracker_name in ("bugs", "support")
    }
    with (
        ServerProcess(
            command(port, homes), port, tmp_path / "logs", name=name, ready_path="/"
        ),
        Session() as anon,
    ):
        yield base, anon, anon.get(base)


def test_gunicorn_with_the_config_file(tmp_path: Path, tracker_template: Path) -> None:
    port = free_port()
    web = f"http://127.0.0.1:{port}/"
    home = tracker(tracker_template, tmp_path / "bugs", web)
    command = [
        venv_program("gunicorn"),
        "-c",
        str(DEPLOY_DIR / "gunicorn.conf.py"),
        "-b",
        f"127.0.0.1:{port}",
    ]
    env = {"ROUNDUP_TRACKER_HOME": str(home)}
    with ServerProcess(command, port, tmp_path / "logs", env=env, name="gunicorn"):
        use_tracker(web, title="Made under gunicorn.conf.py")
    log = (tmp_path / "logs" / "gunicorn.stderr.log").read_text()
    assert "Booting worker" in log
    # roundup-wsgi's access log, one line per request.
    assert re.search(r'"GET /issue1 HTTP/1.1" 200 \d+ "-" "[^"]*" \d+ \w+', log)


def test_uwsgi_ini(tmp_path: Path, tracker_template: Path) -> None:
    port = free_port()
    web = f"http://127.0.0.1:{port}/"
    home = tracker(tracker_template, tmp_path / "bugs", web)
    script = tmp_path / "roundup.wsgi"
    script.write_text(wsgi_script(str(home)))
    ini = tmp_path / "uwsgi.ini"
    ini.write_text(
        rewrite(
            recipe("uwsgi.ini"),
            {
                "http-socket = 127.0.0.1:8080": f"http-socket = 127.0.0.1:{port}",
                "wsgi-file = /srv/roundup/roundup.wsgi": f"wsgi-file = {script}",
            },
        )
    )
    command = [venv_program("uwsgi"), "--ini", str(ini)]
    with ServerProcess(
        command, port, tmp_path / "logs", name="uwsgi", start_timeout=START
    ):
        use_tracker(web, title="Made under uWSGI")


def test_paste_ini_two_trackers_under_gunicorn(
    tmp_path: Path, tracker_template: Path
) -> None:
    """deploy/paste.ini beside two trackers, loaded by ``gunicorn --paste``
    (PasteDeploy's loadapp): both served, each under its name."""

    def paste(port: int, homes: dict[str, Path]) -> list[str]:
        shutil.copy(DEPLOY_DIR / "paste.ini", tmp_path / "paste.ini")
        return [
            venv_program("gunicorn"),
            "--paste",
            str(tmp_path / "paste.ini"),
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            "1",
        ]

    with two_trackers_served(tmp_path, tracker_template, "paste", paste) as (
        base,
        anon,
        index,
    ):
        assert index.status_code == 200
        assert 'href="/bugs/"' in index.text
        assert 'href="/support/"' in index.text
        assert anon.get(base + "nope/issue1").status_code == 404
        moved = anon.get(base + "bugs", allow_redirects=False)
        assert moved.status_code == 301
        assert moved.headers["Location"] == base + "bugs/"
        bugs_issue = use_tracker(base + "bugs/", title="Made in bugs via paste")
        support_issue = use_tracker(base + "support/", title="Made in support")
        # Two databases: each new issue exists only in its own tracker.
        assert bugs_issue == support_issue == "issue4"
        titles = {
            name: anon.get(f"{base}{name}/issue4").text for name in ("bugs", "support")
        }
        assert "Made in bugs via paste" in titles["bugs"]
        assert "Made in bugs via paste" not in titles["support"]


def post_from(
    source: str, port: int, path: str, body: str, headers: dict[str, str]
) -> http.client.HTTPResponse:
    """POST to 127.0.0.1:port from the loopback address ``source``."""
    connection = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=60, source_address=(source, 0)
    )
    connection.request(
        "POST",
        path,
        body=body,
        headers={"Content-Type": "application/x-www-form-urlencoded", **headers},
    )
    response = connection.getresponse()
    response.read_body = response.read()  # type: ignore[attr-defined]
    connection.close()
    return response


def https_get_from(source: str, port: int, path: str, cert: Path) -> tuple[int, bytes]:
    """GET https://127.0.0.1:port``path`` from the loopback address ``source``."""
    return get_from(source, port, path, cert)


def test_nginx_https_in_front_of_gunicorn(
    tmp_path: Path, tracker_template: Path
) -> None:
    """deploy/nginx-roundup.conf (TLS, X-Forwarded-*) in front of
    gunicorn: login and form posts pass Roundup's Origin/Host checks over
    https; forwarded headers count from nginx only."""
    nginx = require_program("nginx", "apt-get install nginx-light")
    openssl = require_program("openssl", "apt-get install openssl")
    app_port = free_port()
    site = NginxSite(nginx, openssl, tmp_path, app_port, "bugs/")
    https_port, http_port, web, cert = (
        site.https_port,
        site.http_port,
        site.web,
        site.cert,
    )
    public = f"https://127.0.0.1:{https_port}/"
    home = tracker(tracker_template, tmp_path / "bugs", web)
    app = [
        venv_program("gunicorn"),
        "-c",
        str(DEPLOY_DIR / "gunicorn.conf.py"),
        "-b",
        f"127.0.0.1:{app_port}",
    ]
    env = {
        "ROUNDUP_TRACKERS": f"bugs={home}",
        "ROUNDUP_WSGI_TRUSTED_PROXIES": "127.0.0.1",
    }
    with (
        ServerProcess(app, app_port, tmp_path / "logs", env=env, name="gunicorn"),
        ListeningProcess(site.command, https_port, tmp_path / "logs", name="nginx"),
        Session(verify=str(cert)) as browser,
    ):
        use_tracker(web, verify=str(cert), title="Made over https through nginx")

        # Plain http is redirected to https.
        plain = browser.get(
            f"http://127.0.0.1:{http_port}/bugs/", allow_redirects=False
        )
        assert plain.status_code == 301
        assert plain.headers["Location"] == f"https://127.0.0.1:{http_port}/bugs/"

        # Through nginx the forwarded scheme and host are honoured.
        moved = browser.get(public + "bugs", allow_redirects=False)
        assert moved.status_code == 301
        assert moved.headers["Location"] == web

        # A client reaching gunicorn directly (from 127.0.0.2, not trusted)
        # cannot claim to be the https site: its X-Forwarded-* are dropped.
        forged = {
            "Host": f"127.0.0.1:{app_port}",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": f"127.0.0.1:{https_port}",
            "Origin": public.rstrip("/"),
            "Referer": web,
        }
        login = (
            f"__login_name={seeded.DEMO_USER}&__login_password="
            f"{seeded.DEMO_PASSWORD}&@action=login"
        )
        direct = post_from("127.0.0.2", app_port, "/bugs/", login, forged)
        assert b"Invalid HOST" in direct.read_body  # type: ignore[attr-defined]
        assert b"Hello, demo" not in direct.read_body  # type: ignore[attr-defined]
        spoofed = post_from("127.0.0.2", app_port, "/bugs", "", forged)
        location = spoofed.getheader("Location")
        assert location == f"http://127.0.0.1:{app_port}/bugs/"
        # The same headers from the trusted address are believed.
        trusted = post_from("127.0.0.1", app_port, "/bugs/", login, forged)
        assert b"Hello, demo" in trusted.read_body  # type: ignore[attr-defined]

        # Readiness through nginx from an allowed address, for all trackers
        # and for one; nginx refuses other addresses.
        for path in ("-/ready", "bugs/-/ready"):
            ready = browser.get(public + path)
            assert ready.status_code == 200, ready.text
            assert ready.json()["checks"]["bugs:database"] == "ok"
        refused = https_get_from("127.0.0.2", https_port, "/bugs/-/ready", cert)
        assert refused[0] == 403
        assert b"checks" not in refused[1]


def test_systemd_unit(tmp_path: Path, tracker_template: Path) -> None:
    """deploy/roundup-wsgi.service: systemd-analyze verify accepts it, and
    its ExecStart, with its Environment, serves the tracker."""
    port = free_port()
    web = f"http://127.0.0.1:{port}/"
    home = tracker(tracker_template, tmp_path / "bugs", web)
    unit_text = rewrite(
        recipe("roundup-wsgi.service"),
        {
            "/srv/roundup/venv/bin/gunicorn": venv_program("gunicorn"),
            "/srv/roundup/deploy/gunicorn.conf.py": str(
                DEPLOY_DIR / "gunicorn.conf.py"
            ),
            "/srv/roundup/bugs": str(home),
            "WorkingDirectory=/srv/roundup": f"WorkingDirectory={tmp_path}",
            "/srv/roundup/venv/bin/roundup-wsgi": venv_program("roundup-wsgi"),
            "https://bugs.example.org/": web,
        },
    )
    unit = parse_unit(unit_text)
    assert set(unit) == {"Unit", "Service", "Install"}
    service = dict(unit["Service"])
    assert service["Type"] == "notify"
    assert service["User"] == "roundup"
    unit_file = tmp_path / "roundup-wsgi.service"
    unit_file.write_text(unit_text)
    analyze = shutil.which("systemd-analyze")
    if analyze is not None:
        verify = subprocess.run(
            [analyze, "verify", str(unit_file)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert verify.returncode == 0, verify.stderr
        assert "Unknown key" not in verify.stderr
        assert "unit-file" not in verify.stderr
    env = dict(
        item.split("=", 1) for key, item in unit["Service"] if key == "Environment"
    )
    assert set(env) == {"ROUNDUP_TRACKER_HOME", "ROUNDUP_WSGI_TRUSTED_PROXIES"}
    env["GUNICORN_CMD_ARGS"] = f"-b 127.0.0.1:{port}"  # instead of port 8080
    # ExecStartPre: roundup-wsgi check passes for a working tracker ...
    check = service["ExecStartPre"].split()
    passed = subprocess.run(
        check, capture_output=True, text=True, timeout=300, env={**os.environ, **env}
    )
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "All checks passed." in passed.stdout
    command = service["ExecStart"].split()
    with ServerProcess(command, port, tmp_path / "logs", env=env, name="unit"):
        use_tracker(web, title="Made by the systemd unit's command")
    # ... and fails (so systemd does not start the service) for a broken one.
    (home / "schema.py").write_text("this is not Python\n")
    failed = subprocess.run(
        check, capture_output=True, text=True, timeout=300, env={**os.environ, **env}
    )
    assert failed.returncode != 0
    assert "FAIL" in failed.stdout


# -- Apache httpd with mod_wsgi ------------------------------------------------


def test_wsgi_script_recipe_is_the_commands_output() -> None:
    assert recipe("roundup.wsgi") == wsgi_script("/srv/roundup/bugs")


def mod_wsgi_express() -> Path:
    """The ``mod_wsgi-express`` of this environment (skip, or fail in CI,
    without it)."""
    beside = Path(sys.executable).with_name("mod_wsgi-express")
    found = require_program(
        "mod_wsgi-express",
        "pip install mod_wsgi (it builds against apt-get install apache2-dev)",
        str(beside),
    )
    # Prefer the one beside this Python: it has this environment's packages.
    return beside if beside.exists() else Path(found)


@pytest.fixture
def apache_user() -> str:
    """The account Apache's children run as when the test runs as root."""
    for name in ("www-data", "nobody"):
        if user_exists(name):
            return name
    pytest.skip("no www-data or nobody account to run Apache as")


@dataclass
class ApacheSite:
    """A seeded tracker Apache's user can reach.

    :ivar base: a world-readable (0755) directory outside pytest's 0700
        tmp root, removed afterwards.
    :ivar port: the free loopback port Apache is to listen on.
    :ivar web: the tracker's ``[tracker] web``, ``http://127.0.0.1:PORT/``.
    :ivar home: the tracker home, ``base/bugs``; as root, owned by the
        Apache user.
    :ivar python: the Python to run mod_wsgi-express with: this one, or as
        root a copy the Apache user can read (:func:`readable_python`).
    :ivar as_root: the test runs as root (Apache's children then run as the
        Apache user).
    """

    base: Path
    port: int
    web: str
    home: Path
    python: str
    as_root: bool


@pytest.fixture
def apache_site(tracker_template: Path, apache_user: str) -> Iterator[ApacheSite]:
    # Outside pytest's 0700 tmp root, so the Apache user can reach it.
    base = Path(tempfile.mkdtemp(prefix="roundup-wsgi-apache-"))
    base.chmod(0o755)
    try:
        port = free_port()
        web = f"http://127.0.0.1:{port}/"
        home = tracker(tracker_template, base / "bugs", web)
        python = sys.executable
        as_root = os.geteuid() == 0
        if as_root:
            python = str(readable_python(base, apache_user))
            subprocess.run(["chown", "-R", f"{apache_user}:", str(home)], check=True)
        yield ApacheSite(base, port, web, home, python, as_root)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_mod_wsgi_express_with_the_script(
    apache_site: ApacheSite,
    apache_user: str,
) -> None:
    """``mod_wsgi-express start-server deploy/roundup.wsgi``; as root with
    --user/--group, the tracker (and, if need be, a Python) made readable
    for that user."""
    require_program(
        "apache2", "apt-get install apache2 apache2-dev", "/usr/sbin/apache2"
    )
    express = mod_wsgi_express()
    base, port, web = apache_site.base, apache_site.port, apache_site.web
    options: list[str] = []
    if apache_site.as_root:
        options = ["--user", apache_user, "--group", _group_of(apache_user)]
    script = base / "roundup.wsgi"
    shutil.copy(DEPLOY_DIR / "roundup.wsgi", script)
    os.chmod(script, 0o644)
    command = [
        apache_site.python,
        str(express),
        "start-server",
        str(script),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--server-root",
        str(base / "httpd"),
        "--log-to-terminal",
        *options,
    ]
    env = {
        "ROUNDUP_TRACKER_HOME": str(apache_site.home),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
    }
    with ServerProcess(
        command, port, base / "logs", env=env, name="mod_wsgi", start_timeout=START
    ) as server:
        use_tracker(web, title="Made under Apache mod_wsgi")
        assert server.proc is not None
        if apache_site.as_root:  # Apache's children and the daemon run as that user
            assert child_users(server.proc.pid) == {apache_user}
        log = server.log_tail(400)
    assert "mod_wsgi" in log


def _group_of(user: str) -> str:
    import grp
    import pwd

    return grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name


def test_apache_conf_with_apache_httpd(
    apache_site: ApacheSite, apache_user: str
) -> None:
    """deploy/apache-roundup.conf in a real Apache httpd (``apache2``) with
    mod_wsgi's module: the daemon process group serves the tracker, Apache
    itself serves ``@@file`` static files."""
    apache = require_program(
        "apache2", "apt-get install apache2 apache2-dev", "/usr/sbin/apache2"
    )
    modules = Path("/usr/lib/apache2/modules")
    express = mod_wsgi_express()
    if not modules.is_dir():
        pytest.fail(f"apache2 is installed but {modules} is missing")
    base, port, web = apache_site.base, apache_site.port, apache_site.web
    home, python, as_root = apache_site.home, apache_site.python, apache_site.as_root
    user = apache_user if as_root else pwd.getpwuid(os.geteuid()).pw_name
    group = _group_of(user)
    script = base / "roundup.wsgi"
    script.write_text(wsgi_script(str(home)))
    script.chmod(0o644)
    site = rewrite(
        recipe("apache-roundup.conf"),
        {
            "<VirtualHost *:80>": f"<VirtualHost *:{port}>",
            "ServerName bugs.example.org": "ServerName 127.0.0.1",
            "user=roundup group=roundup": f"user={user} group={group}",
            "/srv/roundup/bugs": str(home),
            "/srv/roundup/roundup.wsgi": str(script),
            "/srv/roundup": str(base),
        },
    )
    (base / "site.conf").write_text(site)
    module_config = subprocess.run(
        [python, str(express), "module-config"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    root = base / "httpd"
    (root / "logs").mkdir(parents=True)
    (root / "run").mkdir()
    load = "".join(
        f"LoadModule {name}_module {modules / f'mod_{name}.so'}\n"
        for name in ("mpm_event", "authz_core", "authz_host", "alias", "mime")
    )
    user_lines = f"User {user}\nGroup {group}\n" if as_root else ""
    config = root / "httpd.conf"
    config.write_text(
        f'ServerRoot "{root}"\nListen 127.0.0.1:{port}\n'
        f"PidFile {root / 'run' / 'httpd.pid'}\n"
        f"DefaultRuntimeDir {root / 'run'}\n"
        "ErrorLog /dev/stderr\nLogLevel info\n"
        f"{load}TypesConfig /etc/mime.types\n{user_lines}"
        f"WSGISocketPrefix {root / 'run' / 'wsgi'}\n"
        f"{module_config}\nInclude {base / 'site.conf'}\n"
    )
    checked = subprocess.run(
        [apache, "-t", "-f", str(config)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr
    command = [apache, "-DFOREGROUND", "-f", str(config)]
    env = {"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    with (
        ServerProcess(
            command, port, base / "logs", env=env, name="httpd", start_timeout=START
        ) as server,
        Session() as anon,
    ):
        use_tracker(web, title="Made under Apache httpd")
        style = anon.get(web + "@@file/style.css")
        assert style.status_code == 200
        assert style.content == (home / "html" / "style.css").read_bytes()
        # Apache's AliasMatch answered, not Roundup (which would add its
        # Cache-Control: public, max-age=...).
        assert "Cache-Control" not in style.headers
        admin = ("admin", seeded.ADMIN_PASSWORD)
        rest = anon.get(web + "rest/data/issue/1", auth=admin)
        assert rest.status_code == 200  # WSGIPassAuthorization On
        # /-/ only from the allowed network.
        ready = anon.get(web + "-/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json()["status"] == "ok"
        assert get_from("127.0.0.2", port, "/-/ready")[0] == 403
        assert server.proc is not None
        if as_root:
            assert child_users(server.proc.pid) == {apache_user}


def test_roundup_wsgi_serve_two_trackers(
    tmp_path: Path, tracker_template: Path
) -> None:
    """``roundup-wsgi serve bugs=... support=...`` (waitress): the index
    page, both trackers under their names, 404 for another name."""

    def serve(port: int, homes: dict[str, Path]) -> list[str]:
        return [
            venv_program("roundup-wsgi"),
            "serve",
            *(f"{name}={home}" for name, home in homes.items()),
            "--port",
            str(port),
            "--trusted-proxy",
            "127.0.0.1",
        ]

    with two_trackers_served(tmp_path, tracker_template, "serve", serve) as (
        base,
        anon,
        index,
    ):
        hrefs = [f'href="/{name}/"' in index.text for name in ("bugs", "support")]
        assert hrefs == [True, True]
        assert anon.get(base + "other/").status_code == 404
        use_tracker(base + "bugs/", title="Made in bugs by roundup-wsgi serve")
        use_tracker(base + "support/", title="Made in support")
    out = (tmp_path / "logs" / "serve.stdout.log").read_text()
    assert f"at {base} (waitress" in out
    err = (tmp_path / "logs" / "serve.stderr.log").read_text()
    assert "warning" not in err


# -- HAProxy in front of two application servers ------------------------------


def get_from(
    source: str, port: int, path: str, cert: Path | None = None
) -> tuple[int, bytes]:
    """GET 127.0.0.1:port``path`` from the loopback address ``source``:
    ``(status, body)``; over HTTPS, trusting ``cert``, when ``cert`` is given."""
    connection = (
        http.client.HTTPConnection(
            "127.0.0.1", port, timeout=60, source_address=(source, 0)
        )
        if cert is None
        else http.client.HTTPSConnection(
            "127.0.0.1",
            port,
            timeout=60,
            source_address=(source, 0),
            context=ssl.create_default_context(cafile=str(cert)),
        )
    )
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def app_requests(log: Path) -> int:
    """Access-log lines of an application server, health checks left out."""
    lines = log.read_text(errors="replace").splitlines()
    return sum(" HTTP/1." in line and "/-/ready" not in line for line in lines)


def wait_until(predicate: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"not {what} within {timeout:.0f} s"
        time.sleep(0.5)


def test_haproxy_checks_ready_and_drains(
    tmp_path: Path, tracker_template: Path
) -> None:
    """deploy/haproxy.cfg in front of two ``roundup-wsgi serve``: the
    tracker works through it; a server whose drain file exists fails
    /-/ready, HAProxy's active check takes it out and every request goes to
    the other until the file is removed; /-/ is refused to other networks."""
    haproxy = require_program("haproxy", "apt-get install haproxy")
    front, app1, app2 = free_port(), free_port(), free_port()
    web = f"http://127.0.0.1:{front}/"
    home = tracker(tracker_template, tmp_path / "bugs", web)
    config = checked_haproxy_config(
        haproxy,
        tmp_path / "haproxy.cfg",
        {
            "bind :80": f"bind 127.0.0.1:{front}",
            "127.0.0.1:8081": f"127.0.0.1:{app1}",
            "127.0.0.1:8082": f"127.0.0.1:{app2}",
        },
    )
    drain = {app1: tmp_path / "drain-1", app2: tmp_path / "drain-2"}

    def app(port: int) -> list[str]:
        return serve_command(home, port, "--drain-file", str(drain[port]))

    logs = tmp_path / "logs"
    with (
        ServerProcess(app(app1), app1, logs, name="app1", ready_path="/-/health"),
        ServerProcess(app(app2), app2, logs, name="app2", ready_path="/-/health"),
        ListeningProcess(
            [haproxy, "-db", "-f", str(config)], front, logs, name="haproxy"
        ),
        Session() as anon,
    ):
        first = logs / "app1.stderr.log"
        second = logs / "app2.stderr.log"
        # Both up: HAProxy checks /-/ready and balances over both.
        wait_until(
            lambda: (
                "/-/ready" in first.read_text() and "/-/ready" in second.read_text()
            ),
            "checked by HAProxy",
        )
        use_tracker(web, title="Made through HAProxy")
        for _ in range(6):
            assert anon.get(web + "issue1").status_code == 200
        assert app_requests(first) > 0
        assert app_requests(second) > 0

        # Drain app1: its /-/ready fails, HAProxy takes it out.
        drain[app1].touch()
        ready = anon.get(
            f"http://127.0.0.1:{app1}/-/ready", headers={"X-Forwarded-For": "127.0.0.1"}
        )
        assert ready.status_code == 503
        assert ready.json()["failing"] == ["drain"]
        time.sleep(2 * 2 + 2)  # fall 2 x inter 2s, and a margin
        before = app_requests(first)
        for _ in range(6):
            assert anon.get(web + "issue1").status_code == 200
        assert app_requests(first) == before

        # Back: it is checked up again and gets requests (from new
        # clients: the SERVERID cookie keeps a client on its server).
        drain[app1].unlink()

        def balanced_again() -> bool:
            for _ in range(4):
                with Session() as fresh:
                    assert fresh.get(web + "issue1").status_code == 200
            return app_requests(first) > before

        wait_until(balanced_again, "sent to app1 again", timeout=30)

        # Through HAProxy /-/ is for the monitoring network only.
        assert anon.get(web + "-/ready").status_code == 200
        status, body = get_from("127.0.0.2", front, "/-/ready")
        assert status == 403
        assert b"checks" not in body
