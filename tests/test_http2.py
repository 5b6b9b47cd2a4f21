"""HTTP/2 over TLS, for real (issue 23): granian (``--http 2``) and
hypercorn (h2 by ALPN) serving ``roundup_wsgi.app:application`` with a
self-signed certificate; nginx's http2 in front of ``roundup-wsgi serve`` is
in tests/test_deploy_requestid.py.  curl (built with nghttp2) loads the home
page, ``style.css`` gzip-compressed, an attachment whole (the server's file
wrapper) and in part (Range) and logs in through the form, each checked to
have gone over HTTP/2.

A streamed answer takes another path through a server than a list of
chunks (Roundup's CSV export writes row by row: the write callable, or the
app_iter of ``"stream"`` mode, each chunk flushed), and HTTP/2 frames it
differently from HTTP/1.1 (DATA frames under flow control, no chunked
encoding): the export is fetched over h2 from granian, hypercorn and nginx
in front of waitress, in ``"stream"`` and ``"auto"`` write modes, and must
be byte for byte the export a server gives over HTTP/1.1."""

from __future__ import annotations

import gzip
import re
import subprocess
from contextlib import ExitStack
from pathlib import Path

import pytest
from helpers import big_tracker, seeded
from helpers.deploy import (
    ListeningProcess,
    NginxSite,
    self_signed_certificate,
    tracker,
)
from helpers.servers import (
    ServerProcess,
    free_port,
    granian_command,
    hypercorn_command,
    waitress_command,
)
from helpers.system import require_program
from helpers.wsgi import call_wsgi, make_environ

from roundup_wsgi import RequestDispatcher

pytestmark = pytest.mark.slow


class Curl:
    """``curl --http2`` against one https site, with a cookie jar."""

    def __init__(self, cert: Path, directory: Path) -> None:
        self.curl = require_program("curl", "apt-get install curl")
        features = subprocess.run(
            [self.curl, "-V"], capture_output=True, text=True, check=True
        ).stdout
        if "HTTP2" not in features:
            pytest.skip("curl without HTTP/2 (nghttp2)")
        self.cert = cert
        self.dir = directory
        self.jar = directory / "cookies.txt"

    def get(
        self, url: str, *args: str, timeout: float = 60, version: str = "--http2"
    ) -> tuple[str, int, dict[str, str], bytes]:
        """``(HTTP version, status, headers in lower case, body)``.

        :param version: curl's protocol option (``--http1.1`` for HTTP/1.1).
        """
        head, body = self.dir / "head.txt", self.dir / "body.bin"
        done = subprocess.run(
            [
                self.curl,
                version,
                "-sS",
                "--cacert",
                str(self.cert),
                "-b",
                str(self.jar),
                "-c",
                str(self.jar),
                "-D",
                str(head),
                "-o",
                str(body),
                "-w",
                "%{http_version} %{http_code}",
                *args,
                url,
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert done.returncode == 0, done.stderr
        version, status = done.stdout.split()
        headers = {}
        for line in head.read_text(errors="replace").splitlines()[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        return version, int(status), headers, body.read_bytes()


def h2_visit(web: str, cert: Path, directory: Path) -> None:
    """Use the seeded tracker at ``web`` over HTTP/2 only (see the module)."""
    curl = Curl(cert, directory)
    version, status, headers, body = curl.get(web)
    assert (version, status) == ("2", 200), body[:500]
    assert b"__login_name" in body

    version, status, headers, body = curl.get(
        web + "@@file/style.css", "-H", "Accept-Encoding: gzip"
    )
    assert (version, status) == ("2", 200)
    assert headers.get("content-encoding") == "gzip", headers
    assert b"{" in gzip.decompress(body)

    url = web + f"file1/{seeded.SMALL_FILE_NAME}"
    version, status, headers, body = curl.get(url)
    assert (version, status) == ("2", 200), headers
    assert body == seeded.SMALL_FILE_BYTES
    version, status, headers, body = curl.get(url, "-H", "Range: bytes=5-8")
    assert (version, status) == ("2", 206), headers
    assert body == seeded.SMALL_FILE_BYTES[5:9]
    assert headers["content-range"] == f"bytes 5-8/{len(seeded.SMALL_FILE_BYTES)}"

    origin = web.rstrip("/")
    _, _, _, front = curl.get(web)
    csrf = re.search(rb'name="@csrf" value="([^"]*)"', front)
    version, status, headers, body = curl.get(
        web,
        "-H",
        f"Origin: {origin}",
        "-H",
        f"Referer: {web}",
        "--data-urlencode",
        f"__login_name={seeded.DEMO_USER}",
        "--data-urlencode",
        f"__login_password={seeded.DEMO_PASSWORD}",
        "--data-urlencode",
        "@action=login",
        "--data-urlencode",
        f"@csrf={csrf.group(1).decode() if csrf else ''}",
    )
    assert (version, status) == ("2", 200), body[:1000]
    assert f"Hello, {seeded.DEMO_USER}".encode() in body, body[:2000]


@pytest.mark.parametrize("server", ["granian", "hypercorn"])
def test_http2_over_tls(server: str, tmp_path: Path, tracker_template: Path) -> None:
    openssl = require_program("openssl", "apt-get install openssl")
    cert, key = self_signed_certificate(openssl, tmp_path)
    port = free_port()
    web = f"https://127.0.0.1:{port}/"
    home = tracker(tracker_template, tmp_path / "bugs", web)
    command = tls_server(server, port, cert, key)
    env = {"ROUNDUP_TRACKER_HOME": str(home)}
    with ListeningProcess(command, port, tmp_path / "logs", env=env, name=server):
        h2_visit(web, cert, tmp_path)


#: Issues of the exported tracker: an export of some 150 KB, more than
#: HTTP/2's initial flow-control window (65,535 bytes).
EXPORT_ISSUES = 2_500
#: The servers of the export test: ours over h2 itself, or behind nginx.
EXPORT_SERVERS = ("granian", "hypercorn", "nginx-waitress")


@pytest.fixture(scope="module")
def export_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tracker of :data:`EXPORT_ISSUES` issues (read-only)."""
    home = tmp_path_factory.mktemp("export") / "tracker"
    return big_tracker.build_big_tracker(home, EXPORT_ISSUES)


@pytest.fixture(scope="module")
def export_reference(
    export_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> bytes:
    """The export as an HTTP/1.1 server with a write callable gets it
    (in process, ``"buffer"`` mode; tests/test_csv_export.py checks real
    servers give these bytes over HTTP/1.1)."""
    home = seeded.copy_tracker(
        export_template, tmp_path_factory.mktemp("ref") / "tracker", "http://localhost/"
    )
    environ = make_environ("GET", "/" + big_tracker.EXPORT_PATH)
    result = call_wsgi(RequestDispatcher(str(home)), environ, server_write=True)
    assert result.status == "200 OK"
    assert result.body.count(b"\r\n") == EXPORT_ISSUES + 1  # and the header
    return result.body


def tls_server(server: str, port: int, cert: Path, key: Path) -> list[str]:
    """The command serving our application over TLS with HTTP/2 (granian's
    ``--http 2``; hypercorn offers h2 and HTTP/1.1 by ALPN)."""
    if server == "granian":
        tls = ["--http", "2", "--ssl-certificate", str(cert), "--ssl-keyfile", str(key)]
        return [*granian_command(port), *tls]
    return [*hypercorn_command(port), "--certfile", str(cert), "--keyfile", str(key)]


@pytest.mark.parametrize("mode", ["stream", "auto"])
@pytest.mark.parametrize("server", EXPORT_SERVERS)
def test_streamed_csv_export_over_http2(
    server: str,
    mode: str,
    tmp_path: Path,
    export_template: Path,
    export_reference: bytes,
) -> None:
    openssl = require_program("openssl", "apt-get install openssl")
    logs = tmp_path / "logs"
    env = {"ROUNDUP_WSGI_WRITE_MODE": mode}
    with ExitStack() as stack:
        if server == "nginx-waitress":
            nginx = require_program("nginx", "apt-get install nginx-light")
            app_port = free_port()
            site = NginxSite(nginx, openssl, tmp_path, app_port)
            web, cert = site.web, site.cert
            env |= {"ROUNDUP_WSGI_TRUSTED_PROXIES": "127.0.0.1"}
            app = waitress_command(app_port)
            processes = [
                ServerProcess(app, app_port, logs, env=env, name="waitress"),
                ListeningProcess(site.command, site.https_port, logs, name="nginx"),
            ]
        else:
            cert, key = self_signed_certificate(openssl, tmp_path)
            port = free_port()
            web = f"https://127.0.0.1:{port}/"
            command = tls_server(server, port, cert, key)
            processes = [ListeningProcess(command, port, logs, env=env, name=server)]
        home = seeded.copy_tracker(export_template, tmp_path / "bugs", web)
        for process in processes:
            process.extra_env["ROUNDUP_TRACKER_HOME"] = str(home)
            stack.enter_context(process)
        curl = Curl(cert, tmp_path)
        version, status, headers, body = curl.get(
            web + big_tracker.EXPORT_PATH, timeout=120
        )
        assert (version, status) == ("2", 200), body[:500]
        assert headers["content-type"] == "text/csv; charset=utf-8"
        assert body == export_reference
        if server != "granian":  # granian --http 2 speaks h2 only
            version, status, _, plain = curl.get(
                web + big_tracker.EXPORT_PATH, timeout=120, version="--http1.1"
            )
            assert (version, status) == ("1.1", 200)
            assert plain == body
