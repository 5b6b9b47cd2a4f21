"""HTTP/2 over TLS, for real (issue 23): granian (``--http 2``) and
hypercorn (h2 by ALPN) serving ``roundup_wsgi.app:application`` with a
self-signed certificate; nginx's http2 in front of ``roundup-wsgi serve`` is
in tests/test_deploy_requestid.py.  curl (built with nghttp2) loads the home
page, ``style.css`` gzip-compressed, part of an attachment (Range) and logs
in through the form, each checked to have gone over HTTP/2."""

from __future__ import annotations

import gzip
import re
import subprocess
from pathlib import Path

import pytest
from helpers import seeded
from helpers.deploy import ListeningProcess, self_signed_certificate
from helpers.servers import free_port, granian_command, hypercorn_command
from helpers.system import require_program
from test_deploy import tracker

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
        self, url: str, *args: str, timeout: float = 60
    ) -> tuple[str, int, dict[str, str], bytes]:
        """``(HTTP version, status, headers in lower case, body)``."""
        head, body = self.dir / "head.txt", self.dir / "body.bin"
        done = subprocess.run(
            [
                self.curl,
                "--http2",
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
    if server == "granian":
        command = [
            *granian_command(port),
            "--http",
            "2",
            "--ssl-certificate",
            str(cert),
            "--ssl-keyfile",
            str(key),
        ]
    else:
        command = [
            *hypercorn_command(port),
            "--certfile",
            str(cert),
            "--keyfile",
            str(key),
        ]
    env = {"ROUNDUP_TRACKER_HOME": str(home)}
    with ListeningProcess(command, port, tmp_path / "logs", env=env, name=server):
        h2_visit(web, cert, tmp_path)
