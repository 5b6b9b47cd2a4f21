"""Cost of the write()-to-iterable adapters, and memory of a big CSV export.

Run from the repository root (with the test and stream extras installed)::

    python -m benchmarks.adapters [--requests 5000] [--issues 20000] [--exports 2]
        [--modes stock,auto,buffer,server,stream] [--no-adapters]

It prints one table:

* per-request time of a WSGI application behind
  :func:`roundup_wsgi.wsgi.adapters.iterable_only` in each mode, against calling
  it directly with a write callable (microseconds, median of ``--requests``
  calls, the whole body iterated and closed), for an application that sends
  its body with 4 write() calls and one that returns it as 4 chunks;
* the peak resident set of waitress (4 threads) serving ``--exports``
  sequential CSV exports (``@action=export_csv``) of a tracker with
  ``--issues`` issues, in MiB of growth of ``VmHWM`` over what it was after
  a warm-up page, for Roundup's own dispatcher and ours in each write mode
  (ratio: stock / mode), with the time to the first byte and to the last of
  the last export (seconds; one run on a loaded machine is noisy).

Everything runs on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from helpers import big_tracker, seeded, servers  # noqa: E402

from roundup_wsgi.wsgi.adapters import MODES, iterable_only  # noqa: E402

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
CHUNK = b"x" * 100
HEADERS = [("Content-Type", "text/plain")]


def writing_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """Sends its body with 4 write() calls."""
    write = start_response("200 OK", list(HEADERS))
    for _ in range(4):
        write(CHUNK)
    return []


def returning_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """Returns its body as 4 chunks."""
    start_response("200 OK", list(HEADERS))
    return [CHUNK] * 4


def time_requests(app: Callable[..., Iterable[bytes]], n: int) -> float:
    """Median microseconds of one request: call, iterate, close."""
    sent: list[bytes] = []

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        return sent.append  # a server's write callable

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/"}
    samples = []
    clock = time.perf_counter_ns
    for _ in range(n):
        begin = clock()
        body = app(environ, start_response)
        for chunk in body:
            sent.append(chunk)
        close = getattr(body, "close", None)
        if close is not None:
            close()
        samples.append(clock() - begin)
        sent.clear()
    return statistics.median(samples) / 1000


def peak_rss_kib(pid: int) -> int:
    """``VmHWM`` (peak resident set, KiB) of process ``pid``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmHWM for pid {pid}")


def export(url: str) -> tuple[float, float, int]:
    """GET ``url``: (seconds to the first byte, to the last, body bytes)."""
    begin = time.perf_counter()
    with OPENER.open(url, timeout=300) as response:
        first = response.read(1)
        first_byte = time.perf_counter() - begin
        size = len(first)
        while block := response.read(64 * 1024):
            size += len(block)
    return first_byte, time.perf_counter() - begin, size


def measure_export(
    app: str, mode: str | None, template: Path, work: Path, exports: int
) -> tuple[float, float, float, int]:
    """Serve the big tracker with waitress; run ``exports`` exports.

    :returns: (MiB of peak RSS growth, first-byte s, total s, body bytes).
    """
    port = servers.free_port()
    name = mode or "stock"
    home = seeded.copy_tracker(
        template, work / f"{name}-{port}", f"http://127.0.0.1:{port}/"
    )
    env = {"ROUNDUP_TRACKER_HOME": str(home)}
    if mode:
        env["ROUNDUP_WSGI_WRITE_MODE"] = mode
    command = servers.waitress_command(port, app)
    with servers.ServerProcess(
        command, port, work / f"log-{name}-{port}", env=env
    ) as proc:
        assert proc.proc is not None
        OPENER.open(proc.url + "issue", timeout=60).read()
        before = peak_rss_kib(proc.proc.pid)
        for _ in range(exports):
            first, total, size = export(proc.url + big_tracker.EXPORT_PATH)
        growth = (peak_rss_kib(proc.proc.pid) - before) / 1024
    return growth, first, total, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--issues", type=int, default=big_tracker.ISSUES)
    parser.add_argument("--exports", type=int, default=2)
    parser.add_argument(
        "--modes",
        default="stock,auto,buffer,server,stream",
        help="comma-separated export runs, in order; repeat to interleave "
        "(e.g. stock,auto,stock,auto); stock: Roundup's own dispatcher",
    )
    parser.add_argument(
        "--no-adapters", action="store_true", help="skip the adapter timings"
    )
    args = parser.parse_args()
    runs = [None if m == "stock" else m for m in args.modes.split(",") if m]

    rows: list[tuple[str, str, str, str]] = []
    for label, app in (
        ()
        if args.no_adapters
        else (
            ("4 write() calls", writing_app),
            ("4 returned chunks", returning_app),
        )
    ):
        direct = time_requests(app, args.requests)
        rows.append((f"µs per request, {label}", "direct", f"{direct:.1f}", "base"))
        for mode in MODES:
            took = time_requests(iterable_only(app, mode), args.requests)
            rows.append(("", mode, f"{took:.1f}", f"+{took - direct:.1f} µs"))

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        template = big_tracker.build_big_tracker(work / "template", args.issues)
        stock = None
        what = (
            f"MiB peak RSS growth, waitress, {args.exports} CSV exports of "
            f"{args.issues:,} issues"
        )
        for number, mode in enumerate(runs):
            app = servers.STOCK_APP if mode is None else servers.OUR_APP
            growth, first, total, size = measure_export(
                app, mode, template, work, args.exports
            )
            if mode is None:
                stock = growth
            ratio = f"{stock / growth:.1f}x" if stock and growth > 0 else "-"
            rows.append(
                (
                    what if number == 0 else "",
                    mode or "stock Roundup",
                    f"{growth:.1f}",
                    f"{ratio} (first byte {first:.2f} s, all {total:.2f} s, "
                    f"{size / 2**20:.1f} MiB)",
                )
            )

    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    header = ("measure", "mode", "value", "vs base")
    widths = [max(w, len(h)) for w, h in zip(widths, header, strict=False)]
    line = f"{{:{widths[0]}}}  {{:{widths[1]}}}  {{:>{widths[2]}}}  {{}}"
    print(line.format(*header))
    for row in rows:
        print(line.format(*row))


if __name__ == "__main__":
    main()
