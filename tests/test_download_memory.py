"""Attachment downloads in bounded server memory, under a real waitress.

waitress reads a ``wsgi.file_wrapper`` file with ``read(SO_SNDBUF)`` (about
4 MB on Linux loopback); roundup_wsgi's file bodies return at most one 64 KiB
block per read (roundup_wsgi.wsgi.files.BoundedReads), so a 50 MiB download
raises the server's peak RSS (``VmHWM``) by far less than its size.
"""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import seeded, servers

SIZE = 50 * 1024 * 1024  # bytes (50 MiB)
LIMIT_KIB = 10 * 1024  # the most peak RSS may grow, KiB (10 MiB)
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def peak_rss_kib(pid: int) -> int:
    """``VmHWM`` of process ``pid``: its peak resident set size, KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmHWM in /proc/{pid}/status")


def download(url: str) -> int:
    """GET ``url`` reading 1 MiB at a time; return the bytes received."""
    total = 0
    with OPENER.open(url, timeout=120) as response:
        while block := response.read(1024 * 1024):
            total += len(block)
    return total


@pytest.mark.slow
def test_50_mib_download_under_waitress_in_bounded_memory(
    make_tracker: Callable[[str], Path], tmp_path: Path
) -> None:
    port = servers.free_port()
    home = make_tracker(f"http://127.0.0.1:{port}/")
    path = seeded.add_file(home, "payload.bin", seeded.pattern_bytes(SIZE))
    command = servers.waitress_command(port)
    env = {"ROUNDUP_TRACKER_HOME": str(home)}
    with servers.ServerProcess(command, port, tmp_path / "logs", env=env) as server:
        assert server.proc is not None
        url = server.url + path
        download(server.url + "issue1")  # warm-up: templates, database
        before = peak_rss_kib(server.proc.pid)
        assert download(url) == SIZE
        one = peak_rss_kib(server.proc.pid) - before

        sizes: list[int] = []
        threads = [
            threading.Thread(target=lambda: sizes.append(download(url)))
            for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        assert sizes == [SIZE] * 4
        four = peak_rss_kib(server.proc.pid) - before
    assert one < LIMIT_KIB, f"one download raised peak RSS by {one} KiB"
    assert four < LIMIT_KIB, f"four downloads raised peak RSS by {four} KiB"
