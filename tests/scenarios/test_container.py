"""The container image of deploy/container/ (issue 20) and what it relies on.

Fast tests: ``roundup-wsgi init --admin-password-file`` and ``--database``,
and the image's entry point (deploy/container/entrypoint.py) run on this
machine.  Slow tests build the image with podman (tests/helpers/container.py:
runc, host network, a debootstrap base) and run it read-only as a non-root
user: log in, create an issue with an attachment, download it byte-exact,
stop the container during an upload (the upload completes), and find the
issue again from a new container on the same volumes.
"""

from __future__ import annotations

import http.client
import importlib.util
import os
import secrets
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from helpers.container import CONTAINER_DIR, Podman, build_image, podman_or_skip
from helpers.deploy import Session, form_with, log_in_with_token
from helpers.servers import free_port
from roundup import instance

from roundup_wsgi import cli

ADMIN_PASSWORD = "container-admin-pw"


def error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The single stderr line (asserted), nothing on stdout."""
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


def verifies(home: Path, pw: str) -> bool:
    """True when the tracker's admin user has the password *pw*."""
    db = instance.open(str(home)).open("admin")
    try:
        return bool(db.user.get(db.user.lookup("admin"), "password") == pw)
    finally:
        db.close()


# --- roundup-wsgi init: --admin-password-file, --database ----------------------


def test_init_reads_the_admin_password_from_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "admin_password"
    secret.write_text("from-a-file \nsecond line\n")
    home = tmp_path / "bugs"
    assert cli.main(["init", str(home), "--admin-password-file", str(secret)]) == 0
    out = capsys.readouterr().out
    assert "from-a-file" not in out
    assert f"log in as admin (password in {secret})" in out
    assert verifies(home, "from-a-file")


@pytest.mark.parametrize("content", [None, "\n"])
def test_init_refuses_an_unreadable_or_empty_password_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None
) -> None:
    secret = tmp_path / "admin_password"
    if content is not None:
        secret.write_text(content)
    home = tmp_path / "bugs"
    assert cli.main(["init", str(home), "--admin-password-file", str(secret)]) == 2
    line = error_line(capsys)
    assert line.startswith(f"roundup-wsgi: error: --admin-password-file {secret}: ")
    assert not home.exists()


def test_init_password_and_password_file_exclude_each_other(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["init", str(tmp_path / "b"), "--admin-password", "x"]
    assert cli.main([*argv, "--admin-password-file", "f"]) == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_init_database_elsewhere(tmp_path: Path) -> None:
    home, data = tmp_path / "bugs", tmp_path / "data" / "db"
    argv = ["init", str(home), "--database", str(data), "--admin-password", "pw"]
    assert cli.main(argv) == 0
    config = instance.open(str(home)).config
    assert config["DATABASE"] == str(data)
    assert config["MAIL_DEBUG"] == str(data / "mail-debug.log")
    assert (data / "db").exists()  # sqlite's file
    assert not (home / "db").exists()
    assert verifies(home, "pw")


def test_init_refuses_a_database_directory_in_use(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "db").write_text("another tracker")
    home = tmp_path / "bugs"
    assert cli.main(["init", str(home), "--database", str(data)]) == 2
    line = error_line(capsys)
    assert f"--database {data}: it exists and is not an empty directory" in line
    assert not home.exists()
    assert (data / "db").read_text() == "another tracker"


# --- the entry point, run here -------------------------------------------------


@pytest.fixture
def entrypoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """deploy/container/entrypoint.py as a module, with the tracker home,
    data and secrets directories in ``tmp_path`` and this venv on PATH."""
    spec = importlib.util.spec_from_file_location(
        "entrypoint", CONTAINER_DIR / "entrypoint.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name in ("tracker", "data", "secrets"):
        (tmp_path / name).mkdir()
    monkeypatch.setattr(module, "SECRETS", str(tmp_path / "secrets"))
    monkeypatch.setenv("ROUNDUP_TRACKER_HOME", str(tmp_path / "tracker"))
    monkeypatch.setenv("ROUNDUP_DATA", str(tmp_path / "data"))
    bindir = os.path.dirname(sys.executable)
    monkeypatch.setenv("PATH", bindir + os.pathsep + os.environ.get("PATH", ""))
    return module


def test_entrypoint_creates_a_tracker_with_secrets_from_files(
    entrypoint: ModuleType, tmp_path: Path
) -> None:
    secret_dir = tmp_path / "secrets"
    (secret_dir / "roundup_admin_password").write_text("adm-pw\n")
    (secret_dir / "roundup_secret_key").write_text("k" * 40 + "\n")
    assert entrypoint.main(["init"]) == 0
    home = tmp_path / "tracker"
    text = (home / "config.ini").read_text()
    assert f"secret_key = file://{secret_dir}/roundup_secret_key" in text
    assert "k" * 40 not in text
    config = instance.open(str(home)).config
    assert config["WEB_SECRET_KEY"] == "k" * 40
    assert config["DATABASE"] == str(tmp_path / "data" / "db")
    assert verifies(home, "adm-pw")
    assert entrypoint.main(["init"]) == 0  # a second start finds it


def test_entrypoint_refuses_a_volume_that_holds_no_tracker(
    entrypoint: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "tracker" / "notes.txt").write_text("keep me")
    assert entrypoint.main(["serve"]) == 2
    line = error_line(capsys)
    assert line.startswith("roundup-wsgi-entrypoint: error: ")
    assert "holds files but no tracker" in line
    assert os.listdir(tmp_path / "tracker") == ["notes.txt"]


# --- the image (podman) -------------------------------------------------------


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Podman:
    """podman with this machine's settings (skipped where it is missing)."""
    return podman_or_skip(tmp_path_factory.mktemp("podman"))


@pytest.fixture(scope="module")
def image(podman: Podman) -> str:
    """The image built from deploy/container/Containerfile (once per run)."""
    return build_image(podman)


NO_BUILD_TOOLS = """
import importlib.util, os, shutil, sys
found = [p for p in ("gcc", "cc", "c++", "make", "ld", "pip", "pip3", "curl", "wget")
         if shutil.which(p)]
found += [m for m in ("pip", "setuptools", "wheel", "build")
          if importlib.util.find_spec(m)]
found += [d for d in ("/root/.cache", "/tmp/.cache", "/wheels", "/opt/build", "/src",
                      "/wheelhouse", "/usr/include/python3.11")
          if os.path.exists(d) and (not os.path.isdir(d) or os.listdir(d))]
print(sys.executable, found)
sys.exit(1 if found else 0)
"""


@pytest.mark.slow
def test_image_holds_no_build_tools(podman: Podman, image: str) -> None:
    result = podman(
        "run", "--rm", "--network", "host", "--read-only", "--entrypoint", "python",
        image, "-c", NO_BUILD_TOOLS, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "/opt/roundup-wsgi/bin/python" in result.stdout


@pytest.mark.slow
def test_image_refuses_a_volume_that_holds_no_tracker(
    podman: Podman, image: str, tmp_path: Path
) -> None:
    (tmp_path / "notes.txt").write_text("not a tracker")
    tmp_path.chmod(0o755)
    result = podman(
        "run", "--rm", "--network", "host", "--read-only", "--user", "12345:0",
        "-v", f"{tmp_path}:/srv/roundup/tracker", image, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("roundup-wsgi-entrypoint: error: /srv/roundup/tracker ")
    assert "holds files but no tracker" in last


@pytest.fixture
def volumes(podman: Podman) -> Iterator[tuple[str, str]]:
    """Two new named volumes (tracker, data), removed afterwards."""
    suffix = secrets.token_hex(4)
    names = (f"roundup-wsgi-test-tracker-{suffix}", f"roundup-wsgi-test-data-{suffix}")
    for name in names:
        podman("volume", "create", name)
    try:
        yield names
    finally:
        for name in names:
            podman("volume", "rm", "-f", name, check=False)


def create_issue(web: str, session: Session, title: str, attachment: bytes) -> str:
    """Create an issue with one attachment through the item form; return its URL."""
    page = session.get(web + "issue?@template=item")
    fields = form_with(page.text, "title")
    created = session.post(
        web + "issue",
        data={"title": title, "@action": "new", "@csrf": fields["@csrf"]},
        files={"@file": ("payload.bin", attachment, "application/octet-stream")},
        headers={"Origin": web.rstrip("/"), "Referer": web + "issue?@template=item"},
        allow_redirects=False,
    )
    assert created.status_code in (302, 303), created.text[:2000]
    return str(created.headers["Location"]).split("?")[0]


@pytest.mark.slow
def test_read_only_non_root_container(
    podman: Podman, image: str, volumes: tuple[str, str], tmp_path: Path
) -> None:
    secret_dir = tmp_path / "secrets"
    secret_dir.mkdir()
    (secret_dir / "roundup_admin_password").write_text(ADMIN_PASSWORD + "\n")
    (secret_dir / "roundup_secret_key").write_text(secrets.token_hex(32) + "\n")
    for path in secret_dir.iterdir():
        path.chmod(0o644)
    host, port = "127.0.0.1", free_port()
    web = f"http://{host}:{port}/"
    run_args = [
        "--read-only", "--user", "12345:0",
        "-v", f"{volumes[0]}:/srv/roundup/tracker",
        "-v", f"{volumes[1]}:/srv/roundup/data",
        "-v", f"{secret_dir}:/run/secrets:ro",
        "-e", f"ROUNDUP_BIND={host}:{port}", "-e", f"ROUNDUP_INIT_WEB={web}",
        "-e", "ROUNDUP_WORKERS=2",
        image,
    ]  # fmt: skip
    attachment = os.urandom(300_000)
    with podman.container(*run_args) as cid:
        podman.wait_healthy(cid)
        with Session(True) as session:
            log_in_with_token(session, web, "admin", ADMIN_PASSWORD)
            issue = create_issue(web, session, "made in a container", attachment)
            page = session.get(issue)
            assert "made in a container" in page.text
            download = session.get(web + "file1/payload.bin")
            assert download.status_code == 200
            assert download.content == attachment
            uploaded = upload_across_stop(podman, cid, web, session)
        assert uploaded["status"] in (302, 303), uploaded
        assert uploaded["stop_exit"] == 0, uploaded
        # gunicorn exited by itself (graceful), not killed after the timeout
        state = podman("inspect", "--format", "{{.State.ExitCode}}", cid).stdout
        assert state.strip() == "0", podman("logs", cid, check=False).stderr[-3000:]

    # a new container on the same volumes finds both issues and the file
    with podman.container(*run_args) as cid:
        seconds = podman.wait_healthy(cid)
        print(f"restart to healthy: {seconds:.2f} s")
        with Session(True) as session:
            log_in_with_token(session, web, "admin", ADMIN_PASSWORD)
            assert "made in a container" in session.get(web + "issue1").text
            assert "uploaded during the stop" in session.get(web + "issue2").text
            assert session.get(web + "file1/payload.bin").content == attachment


def upload_across_stop(
    podman: Podman, cid: str, web: str, session: Session
) -> dict[str, int]:
    """Start an issue-creating upload, ``podman stop`` the container while it
    is half sent, then send the rest: return its status and stop's exit code."""
    page = session.get(web + "issue?@template=item")
    token = form_with(page.text, "title")["@csrf"]
    boundary = "roundupwsgitestboundary"
    disposition = "Content-Disposition: form-data"
    parts = [
        f'--{boundary}\r\n{disposition}; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in (
            ("title", "uploaded during the stop"),
            ("@action", "new"),
            ("@csrf", token),
        )
    ]
    body = ("".join(parts) + f"--{boundary}--\r\n").encode()
    host, port = web.split("//")[1].rstrip("/").split(":")
    cookie = "; ".join(f"{c.name}={c.value}" for c in session.cookies)
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    connection.putrequest("POST", "/issue")
    for name, value in (
        ("Content-Type", f"multipart/form-data; boundary={boundary}"),
        ("Content-Length", str(len(body))),
        ("Cookie", cookie),
        ("Origin", web.rstrip("/")),
        ("Referer", web + "issue?@template=item"),
    ):
        connection.putheader(name, value)
    connection.endheaders()
    connection.send(body[:100])
    time.sleep(0.5)  # the worker is reading the body now
    stop: dict[str, int] = {}

    def run_stop() -> None:
        stop["stop_exit"] = podman("stop", "-t", "40", cid, check=False).returncode

    stopper = threading.Thread(target=run_stop)
    stopper.start()
    deadline = time.monotonic() + 20
    while "Handling signal: term" not in podman("logs", cid, check=False).stderr:
        assert time.monotonic() < deadline, "gunicorn got no SIGTERM from podman stop"
        time.sleep(0.2)
    time.sleep(0.5)  # the worker got it too
    connection.send(body[100:])
    response = connection.getresponse()
    response.read()
    connection.close()
    stopper.join(60)
    return {"status": response.status, **stop}
