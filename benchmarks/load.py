"""Driving a server: wrk for throughput and latency, Python for downloads.

:func:`run_wrk` runs Debian's ``wrk`` (``apt-get install wrk``) against one
URL with a generated Lua script (method, headers, body) whose ``done`` hook
prints the totals as JSON: requests, duration, the 50th and 99th latency
percentiles and the error count.  wrk is written in C and uses one core at
most with ``-t 1``, so on a 2-core machine it is not the bottleneck for
servers that answer a few thousand requests per second.

:func:`timed_download` and :func:`peak_rss_kib` measure a large download:
time to the first body byte, total time, and the server's peak resident
set size (``VmHWM`` in ``/proc``).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import zlib
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LoadResult", "find_wrk", "peak_rss_kib", "run_wrk", "timed_download"]

_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\n{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, '
    .. '"errors": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50),
    latency:percentile(99),
    e.status + e.connect + e.read + e.write + e.timeout))
end
"""


@dataclass
class LoadResult:
    """What one wrk run measured."""

    requests: int  #: completed requests
    seconds: float  #: wall time of the run
    p50_ms: float  #: median latency, milliseconds
    p99_ms: float  #: 99th percentile latency, milliseconds
    errors: int  #: non-2xx/3xx answers plus socket errors and timeouts

    @property
    def rate(self) -> float:
        """Requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0


def find_wrk() -> str:
    """The wrk executable.

    :raises SystemExit: wrk is not installed (the message says how to).
    """
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit(
            "benchmarks: wrk not found; install it (Debian: apt-get install wrk)"
        )
    return found


def _lua_string(text: str) -> str:
    """``text`` as a Lua long-bracket string literal."""
    level = 0
    while f"]{'=' * level}]" in text:
        level += 1
    eq = "=" * level
    return f"[{eq}[{text}]{eq}]"


def run_wrk(
    url: str,
    *,
    seconds: int,
    connections: int,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: str | None = None,
    wrk: str = "wrk",
    timeout: int = 30,
) -> LoadResult:
    """Load ``url`` with wrk for ``seconds`` over ``connections`` connections.

    :param method: HTTP method of every request.
    :param headers: request headers (e.g. ``Authorization``).
    :param body: request body (for ``POST``).
    :param timeout: seconds after which wrk counts a request as timed out.
    :raises RuntimeError: wrk failed or printed no result (its output is in
        the message).
    """
    lines = [f"wrk.method = {_lua_string(method)}"]
    for name, value in (headers or {}).items():
        lines.append(f"wrk.headers[ {_lua_string(name)} ] = {_lua_string(value)}")
    if body is not None:
        lines.append(f"wrk.body = {_lua_string(body)}")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write("\n".join(lines) + "\n" + _DONE)
    try:
        proc = subprocess.run(
            [
                wrk,
                "-t1",
                f"-c{connections}",
                f"-d{seconds}s",
                f"--timeout={timeout}s",
                "-s",
                script.name,
                url,
            ],
            capture_output=True,
            text=True,
            timeout=seconds + timeout + 30,
            check=False,
        )
    finally:
        Path(script.name).unlink()
    result = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not result:
        raise RuntimeError(
            f"wrk failed on {url} (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}"
        )
    data = json.loads(result[-1])
    return LoadResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1e3,
        p99_ms=data["p99_us"] / 1e3,
        errors=data["errors"],
    )


def _process_tree(pid: int) -> list[int]:
    """``pid`` and its children (gunicorn's workers), from ``/proc``."""
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = task / "children"
        if children.exists():
            pids += [int(child) for child in children.read_text().split()]
    return pids


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, seconds) used so far by ``pid`` and its
    children (gunicorn's workers), from ``/proc/PID/stat``."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for each in _process_tree(pid):
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def reset_peak_rss(pid: int) -> None:
    """Reset the peak RSS (``VmHWM``) of ``pid`` and its children to their
    current RSS (Linux >= 4.0: ``5`` written to ``/proc/PID/clear_refs``),
    so a measurement is not hidden by an earlier, higher peak."""
    for each in _process_tree(pid):
        try:
            Path(f"/proc/{each}/clear_refs").write_text("5")
        except (FileNotFoundError, PermissionError):
            continue


def peak_rss_kib(pid: int) -> int:
    """Peak resident set size (``VmHWM``, KiB) of ``pid`` plus its children
    (gunicorn's workers), read from ``/proc``."""
    total = 0
    for each in _process_tree(pid):
        try:
            status = Path(f"/proc/{each}/status").read_text()
        except FileNotFoundError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1])
    return total


def timed_download(
    url: str, block: int = 1024 * 1024, headers: dict[str, str] | None = None
) -> tuple[float, float, int]:
    """GET ``url`` reading ``block`` bytes at a time.

    :param headers: request headers (e.g. ``Accept-Encoding: gzip``); a
        gzip answer is decoded as it arrives.
    :returns: ``(seconds to the first body byte, total seconds, bytes)``,
        the bytes decoded.
    :raises RuntimeError: the answer is not ``200``.
    """
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=300)
    try:
        start = time.perf_counter()
        conn.request("GET", parts.path, headers=headers or {})
        response = conn.getresponse()
        if response.status != 200:
            raise RuntimeError(f"GET {url} answered {response.status}")
        gzipped = response.getheader("Content-Encoding") == "gzip"
        decoder = zlib.decompressobj(wbits=31)
        first = response.read(1)
        ttfb = time.perf_counter() - start
        size = len(decoder.decompress(first)) if gzipped else len(first)
        while data := response.read(block):
            size += len(decoder.decompress(data)) if gzipped else len(data)
        if gzipped:
            size += len(decoder.flush())
        return ttfb, time.perf_counter() - start, size
    finally:
        conn.close()
