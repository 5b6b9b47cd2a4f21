"""CPU time per request, in-process: Roundup's dispatcher against ours.

Run from the repository root::

    python -m benchmarks.cpu [--issues 500] [--requests 200] [--rounds 5]
        [--only 'GET /issue' --only 'GET /issue1']

It builds the benchmark tracker (``benchmarks/seed.py``), then calls each
WSGI application directly (no server, no sockets) in this thread, like a
server's worker thread would: Roundup 2.6's stock
``roundup.cgi.wsgi_handler.RequestDispatcher``, ours with the default
options (``reuse_db`` on, ``write_mode`` auto) and ours with ``reuse_db``
off.  For each request it reports the median over ``--rounds`` of the CPU
time (``time.process_time``: user + system of this process only) of
``--requests`` requests, in milliseconds per request, and ours/stock as a
speed ratio (stock CPU / our CPU: above 1 means we spend less).  CPU time
counts only what this process spent, so it is far less sensitive to other
load on the machine than requests per second; the rounds alternate the
order of the three applications.
"""

from __future__ import annotations

import argparse
import base64
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from roundup.cgi.wsgi_handler import RequestDispatcher as StockDispatcher  # noqa: E402

from roundup_wsgi import RequestDispatcher  # noqa: E402
from roundup_wsgi.tracker import set_tracker_web  # noqa: E402

from . import seed  # noqa: E402
from .wsgicall import run_app  # noqa: E402

WEB = "http://127.0.0.1:8080/"
ADMIN_BASIC = (
    "Basic " + base64.b64encode(f"admin:{seed.ADMIN_PASSWORD}".encode()).decode()
)

#: (label, path, extra environ)
REQUESTS: list[tuple[str, str, dict[str, str]]] = [
    ("GET /issue", "/issue", {}),
    ("GET /issue1", "/issue1", {}),
    ("GET /issue1 as admin (basic auth)", "/issue1",
     {"HTTP_AUTHORIZATION": ADMIN_BASIC}),
    ("REST GET /rest/data/issue/1 (basic auth)", "/rest/data/issue/1",
     {"HTTP_AUTHORIZATION": ADMIN_BASIC}),
]  # fmt: skip


def environ(path: str, extra: dict[str, str]) -> dict[str, Any]:
    """A GET environ for ``path`` as waitress would build it."""
    path_info, _, query = path.partition("?")
    env: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": path_info,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8080",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1:8080",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": None,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }
    env.update(extra)
    return env


def call(app: Callable[..., Iterable[bytes]], env: dict[str, Any]) -> str:
    """One request as a server makes it; returns the status."""
    import io

    env = dict(env)
    env["wsgi.input"] = io.BytesIO(b"")
    return run_app(app, env)[-1]


def cpu_ms(app: Callable[..., Iterable[bytes]], env: dict[str, Any], n: int) -> float:
    """CPU milliseconds per request over ``n`` requests."""
    begin = time.process_time()
    for _ in range(n):
        call(app, env)
    return (time.process_time() - begin) * 1e3 / n


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--issues", type=int, default=500, help="issues (500)")
    parser.add_argument("--requests", type=int, default=200, help="per round (200)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (5)")
    parser.add_argument(
        "--only",
        action="append",
        metavar="TEXT",
        help="measure only the request labelled TEXT (repeatable; e.g. "
        "--only 'GET /issue' --only 'GET /issue1')",
    )
    args = parser.parse_args(argv)
    chosen = [
        request for request in REQUESTS if not args.only or request[0] in args.only
    ]
    if not chosen:
        labels = ", ".join(repr(label) for label, _, _ in REQUESTS)
        parser.error(f"--only {args.only}: no such request; labels: {labels}")
    with tempfile.TemporaryDirectory(prefix="roundup-wsgi-cpu-") as tmp:
        home = Path(tmp) / "tracker"
        seed.build_tracker(home, args.issues, 1024 * 1024)
        set_tracker_web(home, WEB)
        apps: dict[str, Callable[..., Iterable[bytes]]] = {
            "stock": StockDispatcher(str(home)),
            "ours": RequestDispatcher(str(home)),
            "off": RequestDispatcher(str(home), reuse_db=False),
        }
        rows = []
        for label, path, extra in chosen:
            env = environ(path, extra)
            statuses = {name: call(app, env) for name, app in apps.items()}
            if len(set(statuses.values())) != 1:
                raise SystemExit(f"benchmarks.cpu: {label}: statuses {statuses}")
            results: dict[str, list[float]] = {name: [] for name in apps}
            names = list(apps)
            for round_ in range(args.rounds):
                shift = round_ % len(names)
                for name in names[shift:] + names[:shift]:
                    results[name].append(cpu_ms(apps[name], env, args.requests))
            med = {name: statistics.median(v) for name, v in results.items()}
            spread = {
                name: (max(v) - min(v)) / statistics.median(v) * 100
                for name, v in results.items()
            }
            rows.append((label, statuses["stock"], med, spread))
    print(
        f"CPU ms per request, in-process, median of {args.rounds} rounds of "
        f"{args.requests} requests ({args.issues} issues); speed = stock/ours"
    )
    header = f"{'request':42} {'status':8} {'stock':>7} {'ours':>7} {'speed':>6}"
    header += f" {'reuse off':>9} {'speed':>6}  spread % stock/ours/off"
    print(header)
    print("-" * len(header))
    for label, status, med, spread in rows:
        print(
            f"{label:42} {status[:3]:8} {med['stock']:7.2f} {med['ours']:7.2f} "
            f"{med['stock'] / med['ours']:5.2f}x {med['off']:9.2f} "
            f"{med['stock'] / med['off']:5.2f}x  "
            + "/".join(f"{spread[n]:.0f}" for n in ("stock", "ours", "off"))
        )


if __name__ == "__main__":
    main()
