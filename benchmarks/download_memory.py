"""Peak server memory for attachment downloads: Roundup's dispatcher vs ours.

Run from the repository root (with the test extras installed)::

    python benchmarks/download_memory.py [--size-mib 20] [--downloads 4]

For each server (waitress with 4 threads, gunicorn with 1 sync worker,
granian with 1 worker) it starts Roundup's own ``RequestDispatcher`` and
ours, each on its own copy of a tracker holding one attachment of
``--size-mib`` MiB, downloads the attachment ``--downloads`` times one
after another, and prints the growth of the peak resident set size
(``VmHWM`` of the server's processes, summed) over what it was after a
warm-up page, with the ratio stock/ours.  Everything runs on 127.0.0.1.
``python -m benchmarks`` measures the same for one and four concurrent
downloads, with time to first byte, beside its throughput table.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from helpers import seeded, servers  # noqa: E402

from benchmarks.load import peak_rss_kib  # noqa: E402 - python -m benchmarks's

SERVERS = {
    "waitress": servers.waitress_command,
    "gunicorn": servers.gunicorn_command,
    "granian": servers.granian_command,
}
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def build_tracker(home: Path, size: int) -> str:
    """A seeded tracker with one extra ``size``-byte attachment; returns
    its path below the tracker (``fileN/payload.bin``)."""
    seeded.build_seeded_tracker(home)
    return seeded.add_file(home, "payload.bin", seeded.pattern_bytes(size))


def measure(
    server: str,
    app: str,
    mode: str | None,
    template: Path,
    work: Path,
    path: str,
    n: int,
) -> float | None:
    """MiB of peak RSS growth over ``n`` downloads, or None if they fail."""
    port = servers.free_port()
    name = f"{server}-{app.split(':')[0]}"
    home = seeded.copy_tracker(template, work / name, f"http://127.0.0.1:{port}/")
    env = {"ROUNDUP_TRACKER_HOME": str(home)}
    if server == "gunicorn":
        command = servers.gunicorn_command(port, app)
        command[command.index("-w") + 1] = "1"
    else:
        command = SERVERS[server](port, app)
    if mode:
        env["ROUNDUP_WSGI_WRITE_MODE"] = mode
    with servers.ServerProcess(command, port, work / f"log-{name}", env=env) as proc:
        assert proc.proc is not None
        try:
            OPENER.open(proc.url + "issue", timeout=60).read()
            before = peak_rss_kib(proc.proc.pid)
            for _ in range(n):
                OPENER.open(proc.url + path, timeout=120).read()
        except urllib.error.HTTPError:  # stock Roundup under granian: 500
            return None
        return (peak_rss_kib(proc.proc.pid) - before) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=20)
    parser.add_argument("--downloads", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        template = work / "template"
        path = build_tracker(template, args.size_mib * 1024 * 1024)
        print(
            f"Peak server RSS growth, {args.downloads} sequential downloads "
            f"of a {args.size_mib} MiB attachment"
        )
        print(f"{'server':10} {'stock MiB':>10} {'ours MiB':>10} {'stock/ours':>11}")
        for server in SERVERS:
            stock = measure(
                server, servers.STOCK_APP, None, template, work, path, args.downloads
            )
            ours = measure(
                server, servers.OUR_APP, "buffer", template, work, path, args.downloads
            )
            stock_text = "fails" if stock is None else f"{stock:.1f}"
            ours_text = "fails" if ours is None else f"{ours:.1f}"
            ratio = (
                f"{stock / ours:.1f}x"
                if stock is not None and ours is not None and ours > 0
                else "-"
            )
            print(f"{server:10} {stock_text:>10} {ours_text:>10} {ratio:>11}")


if __name__ == "__main__":
    main()
