"""Helpers for tests/test_deploy.py: the deploy/ recipes started for real.

:func:`recipe` reads a file from ``deploy/`` and :func:`rewrite` swaps its
example paths and ports for the test's (failing when the recipe no longer
holds the text, so a test cannot silently stop covering it).
:func:`use_tracker` is the round trip every recipe must pass: an issue page,
a login through the form, an issue created through the form, an attachment
downloaded; :func:`form_with` (a form's inputs, from a page) serves every
test that fills in a form on a real server.  :func:`self_signed_certificate`,
:func:`nginx_config`, :func:`parse_unit` and :func:`readable_python` prepare
nginx, systemd and Apache runs.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import sysconfig
from collections.abc import Mapping
from html.parser import HTMLParser
from pathlib import Path

from . import seeded
from .servers import LocalSession, ServerProcess

__all__ = [
    "DEPLOY_DIR",
    "ListeningProcess",
    "NginxSite",
    "Session",
    "checked_haproxy_config",
    "child_users",
    "form_with",
    "log_in",
    "log_in_with_token",
    "nginx_config",
    "parse_unit",
    "readable_python",
    "recipe",
    "rewrite",
    "self_signed_certificate",
    "serve_command",
    "tracker",
    "use_tracker",
    "venv_program",
]

#: The recipes.
DEPLOY_DIR = Path(__file__).resolve().parents[2] / "deploy"


#: A requests session that stays on 127.0.0.1 (see servers.LocalSession).
Session = LocalSession


def venv_program(name: str) -> str:
    """A console script installed beside this Python (gunicorn, uwsgi, ...);
    the test fails when it is missing."""
    path = Path(sys.executable).with_name(name)
    if not path.exists():
        import pytest

        pytest.fail(f"{name} is not installed beside {sys.executable}")
    return str(path)


def tracker(template: Path, home: Path, web: str) -> Path:
    """A copy of the seeded tracker ``template`` at ``home`` served at ``web``."""
    return seeded.copy_tracker(template, home, web)


def serve_command(home: Path, port: int, *options: str) -> list[str]:
    """``roundup-wsgi serve HOME --port PORT --trusted-proxy 127.0.0.1`` (the
    balancer in front of it runs on loopback) with more ``options``."""
    return [
        venv_program("roundup-wsgi"),
        "serve",
        str(home),
        "--port",
        str(port),
        "--trusted-proxy",
        "127.0.0.1",
        *options,
    ]


class ListeningProcess(ServerProcess):
    """A :class:`ServerProcess` that is ready once its port accepts TCP
    connections (for nginx, whose plain-HTTP port only redirects to HTTPS)."""

    def _ready_target(self) -> str:
        return f"listen on port {self.port}"

    def _ready(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=5):
                return True
        except OSError:
            return False


def recipe(name: str) -> str:
    """The text of ``deploy/<name>``."""
    return (DEPLOY_DIR / name).read_text()


def rewrite(text: str, replacements: Mapping[str, str]) -> str:
    """Replace each key of ``replacements`` (all its occurrences) in
    ``text``; assert that every key occurs."""
    for old, new in replacements.items():
        assert old in text, f"the recipe no longer contains {old!r}"
        text = text.replace(old, new)
    return text


# -- the round trip ------------------------------------------------------------


class _Forms(HTMLParser):
    """Collects each ``<form>``'s ``<input>`` names and values."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {key: value or "" for key, value in attrs}
        if tag == "form":
            self.forms.append({})
        elif tag == "input" and self.forms and values.get("name"):
            self.forms[-1][values["name"]] = values.get("value", "")


def log_in(
    session: Session,
    web: str,
    csrf: str = "",
    *,
    user: str = seeded.DEMO_USER,
    password: str = seeded.DEMO_PASSWORD,
) -> str:
    """Log in as ``user`` (default ``demo``) through the front page's form of
    the tracker at ``web`` (Origin and Referer of ``web``); return the page
    answered.

    :raises AssertionError: the login did not answer 200 with the user's
        greeting.
    """
    origin = re.match(r"^https?://[^/]+", web)
    assert origin is not None, web
    login = session.post(
        web,
        data={
            "__login_name": user,
            "__login_password": password,
            "@action": "login",
            "@csrf": csrf,
        },
        headers={"Origin": origin.group(0), "Referer": web},
    )
    assert login.status_code == 200, login.text[:2000]
    assert f"Hello, {user}" in login.text, login.text[:2000]
    return str(login.text)


def log_in_with_token(
    session: Session,
    web: str,
    user: str = seeded.DEMO_USER,
    password: str = seeded.DEMO_PASSWORD,
) -> str:
    """:func:`log_in` with the CSRF token of the front page's login form."""
    fields = form_with(session.get(web).text, "__login_name")
    return log_in(session, web, fields.get("@csrf", ""), user=user, password=password)


def form_with(html: str, field: str) -> dict[str, str]:
    """The inputs of the first form that has an input named ``field``."""
    parser = _Forms()
    parser.feed(html)
    for form in parser.forms:
        if field in form:
            return form
    raise AssertionError(f"no form with an input {field!r} in the page")


def use_tracker(web: str, *, verify: str | bool = True, title: str) -> str:
    """Use the seeded tracker served at ``web`` (its ``[tracker] web``) as a
    browser would; return the path of the issue created.

    GET issue1 anonymously; log in as ``demo`` through the front page's
    form; create an issue titled ``title`` through the item form (CSRF token
    from the page, Origin and Referer of ``web``); download ``hello.txt``.
    """
    origin = re.match(r"^https?://[^/]+", web)
    assert origin is not None, web
    headers = {"Origin": origin.group(0), "Referer": web}
    with Session(verify) as session:
        issue = session.get(web + "issue1")
        assert issue.status_code == 200, issue.text[:500]
        assert "Sample issue one" in issue.text

        log_in_with_token(session, web)

        page = session.get(web + "issue?@template=item")
        fields = form_with(page.text, "title")
        created = session.post(
            web + "issue",
            data={
                "title": title,
                "priority": "3",
                "@action": "new",
                "@template": "item",
                "@csrf": fields["@csrf"],
            },
            headers={**headers, "Referer": web + "issue?@template=item"},
            allow_redirects=False,
        )
        assert created.status_code in (302, 303), created.text[:2000]
        location = created.headers["Location"]
        assert location.startswith(web + "issue"), location
        shown = session.get(location)
        assert title in shown.text, (location, shown.status_code, shown.text[:3000])

        attachment = session.get(web + f"file1/{seeded.SMALL_FILE_NAME}")
        assert attachment.status_code == 200
        assert attachment.content == seeded.SMALL_FILE_BYTES
    return location[len(web) :].split("?")[0]


# -- nginx ---------------------------------------------------------------------


def self_signed_certificate(openssl: str, directory: Path) -> tuple[Path, Path]:
    """Make a self-signed certificate for 127.0.0.1 with ``openssl``;
    return ``(certificate, key)`` paths."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def nginx_config(site: str, directory: Path) -> Path:
    """Write a whole nginx configuration around ``site`` (a server block
    file such as deploy/nginx-roundup.conf) into ``directory``: in the
    foreground, pid, logs and temporary files all in ``directory``."""
    for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (directory / name).mkdir(exist_ok=True)
    (directory / "site.conf").write_text(site)
    user = "user root;\n" if os.geteuid() == 0 else ""
    config = directory / "nginx.conf"
    config.write_text(
        f"{user}daemon off;\nworker_processes 1;\n"
        f"pid {directory / 'nginx.pid'};\nerror_log {directory / 'error.log'} info;\n"
        "events { worker_connections 64; }\n"
        "http {\n"
        f"    access_log {directory / 'access.log'};\n"
        f"    client_body_temp_path {directory / 'body'};\n"
        f"    proxy_temp_path {directory / 'proxy'};\n"
        f"    fastcgi_temp_path {directory / 'fastcgi'};\n"
        f"    uwsgi_temp_path {directory / 'uwsgi'};\n"
        f"    scgi_temp_path {directory / 'scgi'};\n"
        f"    include {directory / 'site.conf'};\n"
        "}\n"
    )
    return config


class NginxSite:
    """deploy/nginx-roundup.conf (TLS, HTTP/2) on loopback in front of an
    application server on ``app_port``, with a self-signed certificate.

    :ivar web: the https address (``https://127.0.0.1:PORT/``).
    :ivar cert: the certificate (for clients' ``verify``).
    :ivar log: nginx's access log of the site (the recipe's format, the
        request id last).
    :ivar command: nginx's command line (``nginx -t`` passed).
    :ivar https_port: the port of :attr:`web`.
    :ivar http_port: the plain-HTTP port (it redirects to https).
    """

    def __init__(
        self, nginx: str, openssl: str, directory: Path, app_port: int, path: str = ""
    ) -> None:
        from .servers import free_port

        self.https_port = https_port = free_port()
        self.http_port = http_port = free_port()
        self.web = f"https://127.0.0.1:{self.https_port}/{path}"
        self.cert, key = self_signed_certificate(openssl, directory)
        self.log = directory / "nginx.log"
        site = rewrite(
            recipe("nginx-roundup.conf"),
            {
                "server 127.0.0.1:8080;": f"server 127.0.0.1:{app_port};",
                "listen 80;": f"listen 127.0.0.1:{http_port};",
                "listen 443 ssl http2;": f"listen 127.0.0.1:{https_port} ssl http2;",
                "/var/log/nginx/roundup.access.log": str(self.log),
                "server_name bugs.example.org;": "server_name 127.0.0.1;",
                "/etc/ssl/certs/bugs.example.org.pem": str(self.cert),
                "/etc/ssl/private/bugs.example.org.key": str(key),
            },
        )
        nginx_dir = directory / "nginx"
        nginx_dir.mkdir()
        config = nginx_config(site, nginx_dir)
        self.command = [nginx, "-e", str(nginx_dir / "error.log"), "-c", str(config)]
        test = subprocess.run(
            [*self.command[:1], "-t", *self.command[1:]],
            capture_output=True,
            text=True,
        )
        assert test.returncode == 0, test.stderr


def checked_haproxy_config(
    haproxy: str, config: Path, replacements: Mapping[str, str]
) -> Path:
    """Write deploy/haproxy.cfg with ``replacements`` (:func:`rewrite`) to
    ``config`` and check it with ``haproxy -c``.

    :raises AssertionError: HAProxy refuses it (its output in the message).
    """
    config.write_text(rewrite(recipe("haproxy.cfg"), replacements))
    checked = subprocess.run(
        [haproxy, "-c", "-f", str(config)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    return config


# -- systemd -------------------------------------------------------------------


def parse_unit(text: str) -> dict[str, list[tuple[str, str]]]:
    """Parse a systemd unit file: ``{section: [(key, value), ...]}`` in
    order, keys repeated as written (``Environment=`` may appear many times).

    :raises AssertionError: a line that is neither a comment, a section
        header nor ``Key=value``.
    """
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        header = re.fullmatch(r"\[([A-Za-z]+)\]", line)
        if header:
            current = sections.setdefault(header.group(1), [])
            continue
        pair = re.fullmatch(r"([A-Za-z][A-Za-z0-9]*)\s*=\s*(.*)", line)
        assert pair, f"line {number}: {line!r}"
        assert current is not None, f"line {number} is outside a section"
        current.append((pair.group(1), pair.group(2)))
    return sections


# -- Apache --------------------------------------------------------------------


def can_read(user: str, path: Path) -> bool:
    """True if ``user`` can reach and read ``path`` (every parent directory
    searchable), judged by the mode bits."""
    from roundup_wsgi.cli.check import ServingUser

    who = ServingUser.named(user)
    parts = path.resolve().parts
    for index in range(1, len(parts) + 1):
        partial = os.path.join(*parts[:index])
        want = os.X_OK if index < len(parts) else os.R_OK
        if not who.may(partial, want):
            return False
    return True


def readable_python(directory: Path, user: str) -> Path:
    """A Python, with this environment's packages, that ``user`` can read.

    mod_wsgi's daemon processes start Python after switching to ``user``, so
    the interpreter's standard library and the packages must be readable by
    that user.  When they are (e.g. a system Python), this is
    ``sys.executable``; otherwise (a Python under root's home) a copy in
    ``directory`` made of hard links (a plain copy across file systems): the
    standard library and a virtual environment holding this environment's
    site-packages.

    :returns: the Python executable to run ``mod_wsgi-express`` with.
    """
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    purelib = Path(sysconfig.get_paths()["purelib"])
    if can_read(user, stdlib / "os.py") and can_read(user, purelib):
        return Path(sys.executable)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    home = directory / "python"
    _link_tree(stdlib, home / "lib" / version, skip={"site-packages", "test"})
    (home / "bin").mkdir(parents=True)
    _link_file(Path(sys.executable).resolve(), home / "bin" / version)
    venv = directory / "venv"
    site = venv / "lib" / version / "site-packages"
    _link_tree(purelib, site, skip=set())
    # Editable installs point at source directories by .pth files; those
    # must be readable too (a checkout under /work is, one under /root not).
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(home / "bin" / version)
    (venv / "pyvenv.cfg").write_text(
        f"home = {home / 'bin'}\ninclude-system-site-packages = false\n"
        f"version = {'.'.join(map(str, sys.version_info[:3]))}\n"
    )
    for path in (directory, *directory.rglob("*")):
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    return venv / "bin" / "python"


def _link_file(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _link_tree(source: Path, target: Path, skip: set[str]) -> None:
    """Mirror ``source`` at ``target`` with hard links (copies when linking
    fails), leaving out ``__pycache__`` and the top-level names in ``skip``."""
    for root, dirs, files in os.walk(source):
        rel = Path(root).relative_to(source)
        dirs[:] = [
            d for d in dirs if d != "__pycache__" and not (rel == Path() and d in skip)
        ]
        (target / rel).mkdir(parents=True, exist_ok=True)
        for name in files:
            src = Path(root) / name
            if src.is_symlink():
                (target / rel / name).symlink_to(os.readlink(src))
            else:
                _link_file(src, target / rel / name)


def child_users(pid: int) -> set[str]:
    """The user names of the processes whose parent is ``pid`` (from
    ``/proc``; empty where there is no /proc)."""
    names = set()
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(
                line.split(":", 1) for line in status.read_text().splitlines()
            )
        except (OSError, ValueError):
            continue
        if fields.get("PPid", "").strip() == str(pid):
            uid = int(fields["Uid"].split()[1])  # the effective uid
            names.add(pwd.getpwuid(uid).pw_name)
    return names


def user_exists(name: str) -> bool:
    """True if the account ``name`` exists on this machine."""
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
