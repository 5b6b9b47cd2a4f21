"""The server one-liners of README.rst and docs/getting-started.rst, run as written.

Both files give the same five lines (checked here); each is read from the
documents (not retyped here) and run by bash in a
directory holding ``trackers/demo``, the demo tracker made by the same
function ``roundup-wsgi serve`` uses.  The one substitution is the one the
documents describe: the demo's port ``8080`` becomes a free port, in the
command line and in the demo's ``[tracker] web`` alike (8080 may be taken on
a shared machine).  Then the admin logs in through the front page's form,
as a browser would (Origin and Referer of ``[tracker] web``).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest
from helpers.deploy import form_with
from helpers.servers import LocalSession, ServerProcess, free_port

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.rst"
#: The documentation page holding the one-liners (and the lines around them).
GETTING_STARTED = ROOT / "docs" / "getting-started.rst"
#: How the one-liners start in the documents.
PREFIX = "ROUNDUP_TRACKER_HOME=trackers/demo "
DEMO_PORT = "8080"


def one_liners(document: Path = GETTING_STARTED) -> list[str]:
    """The document's indented lines starting with :data:`PREFIX`."""
    lines = [
        line.strip()
        for line in document.read_text().splitlines()
        if line.startswith("    " + PREFIX)
    ]
    return lines


@pytest.mark.parametrize("document", [README, GETTING_STARTED], ids=lambda p: p.name)
def test_the_documents_have_the_five_one_liners(document: Path) -> None:
    servers = [line.split()[1] for line in one_liners(document)]
    assert servers == ["gunicorn", "granian", "waitress-serve", "hypercorn", "uwsgi"]
    for line in one_liners(document):
        assert line.count(DEMO_PORT) == 1, line


def test_the_readme_and_the_docs_give_the_same_one_liners() -> None:
    assert one_liners(README) == one_liners(GETTING_STARTED)


@pytest.mark.slow
@pytest.mark.parametrize("line", one_liners(), ids=lambda line: line.split()[1])
def test_readme_one_liner_serves_the_demo_and_logs_in(
    line: str, tmp_path: Path
) -> None:
    from roundup_wsgi.cli.demo import ADMIN_USERNAME, create_demo

    port = free_port()
    web = f"http://127.0.0.1:{port}/"
    credentials = create_demo(
        tmp_path / "trackers" / "demo", web=web, admin_password="readme-secret"
    )
    command = line.replace(DEMO_PORT, str(port))
    # The servers' scripts (gunicorn, granian, waitress-serve, hypercorn,
    # uwsgi: pip's pyuwsgi) are beside
    # this Python, as after ``pip install '.[test]'`` in a venv.
    bin_dir = str(Path(sys.executable).parent)
    env = {"PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    # ServerProcess runs it in tmp_path, where trackers/demo is.
    server = ServerProcess(
        ["bash", "-c", command], port, tmp_path, env=env, name=line.split()[1]
    )
    with server:
        assert server.proc is not None
        # bash ran the one command in place of itself: stopping its PID
        # stops the server.
        comm = Path(f"/proc/{server.proc.pid}/cmdline").read_bytes()
        assert b"bash" not in comm.split(b"\0")[0], comm
        with LocalSession() as session:
            front = session.get(web)
            assert front.status_code == 200, server.log_tail()
            fields = form_with(front.text, "__login_name")
            login = session.post(
                web,
                data={
                    "__login_name": ADMIN_USERNAME,
                    "__login_password": credentials.admin_password,
                    "@action": "login",
                    "@csrf": fields.get("@csrf", ""),
                },
                headers={"Origin": web.rstrip("/"), "Referer": web},
            )
            assert login.status_code == 200, login.text[:2000]
            assert re.search(rf"Hello,\s*{ADMIN_USERNAME}", login.text), login.text[
                :2000
            ]
            rest = session.get(web + "rest/data/issue", headers={"Referer": web})
            assert rest.status_code == 200, rest.text[:500]


@pytest.mark.parametrize("document", [README, GETTING_STARTED], ids=lambda p: p.name)
def test_the_servers_extra_is_named_above_the_one_liners(document: Path) -> None:
    """``pip install 'roundup-wsgi[servers]'`` installs what the lines run."""
    import configparser

    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    extra = setup["options.extras_require"]["servers"].split()
    assert {"gunicorn", "granian", "hypercorn"} <= set(extra)
    text = document.read_text()
    named = re.search(r"pip\s+install\s+'roundup-wsgi\[servers\]'", text)
    assert named
    assert named.start() < text.index("    " + PREFIX)


def test_the_stream_mode_example_listens_where_web_says() -> None:
    """granian's default port is 8000: the example names host and port."""
    lines = (ROOT / "docs" / "write-modes.rst").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if "WRITE_MODE=stream \\" in line)
    assert "--host 127.0.0.1 --port 8080" in lines[start + 1]
