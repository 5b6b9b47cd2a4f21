"""What the access log, the metrics and the health checks cost per request.

Run alone (``python -m benchmarks.operations [--quick] [--servers
waitress,gunicorn]``) or as part of ``python -m benchmarks``.  It measures
in two ways.

Under a server (:func:`measure_served`, with ``--servers`` and in
``python -m benchmarks``): a bare dispatcher (``benchmarks.bare``) and
``roundup_wsgi.app:application`` with the access log and the metrics on,
each served by its own server process and loaded in turn with wrk; the
figure is the CPU time per request of the server's processes, as the
other rows of ``python -m benchmarks`` count it (the server's own work,
the kernel's for the sockets, and the application's).

In one process (:func:`measure`), on one copy of the seeded tracker, it
calls two applications directly (no server, no sockets, so the figure is
the application's own CPU time, not the network's): the stricter measure,
where a static file answered from the response cache costs about 12 µs,
less than one access-log line:

* *off*: a bare :class:`~roundup_wsgi.RequestDispatcher`, what ``make_app``
  built before the operations features existed;
* *on*: ``make_app(home, access_log=True, metrics=True)``: finish hooks,
  the access log written through :mod:`logging` by the handler
  ``make_app`` installs (its stream set to ``/dev/null``), the
  Prometheus counters and histogram, the ``/-/`` routing, and a
  ``GET /-/ready`` once per :data:`READY_EVERY` seconds of the "on" runs
  (counted across rounds), as a load balancer would send.

It alternates off and on in rounds of ``seconds`` each (off first in even
rounds, on first in odd ones) and measures the CPU time per request
(``time.process_time``) of each.  The overhead is the median over the rounds
of ``on/off - 1`` within each round: two runs side by side share the
machine's state of the moment, so a busy machine slows both.  Targets: at
most 3% on ``/issue1``, 10% on the static fast path (``/@@file/style.css``).

A third row measures the operations layers alone: the same ``make_app``
stack around an application that answers at once (a 1000-byte body), in
microseconds of CPU per request more than that application alone; the aim
is at most :data:`LAYER_TARGET` seconds.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .wsgicall import run_app

#: Seconds between two ``GET /-/ready`` in the "on" runs.
READY_EVERY = 2.0
#: The operations layers' own CPU time per request aimed at, seconds.
LAYER_TARGET = 20e-6
#: The label of the layers-alone row.
LAYER_LABEL = "layers alone, trivial app"
#: (label, path, target overhead) of the requests measured.
PATHS = (
    ("GET /issue1", "/issue1", 0.03),
    ("GET /@@file/style.css", "/@@file/style.css", 0.10),
)


@dataclass
class Overhead:
    """CPU seconds per request, off and on, one value per round (the two
    values of a round measured side by side)."""

    label: str
    target: float
    off: list[float] = field(default_factory=list)
    on: list[float] = field(default_factory=list)
    #: True: ``target`` is seconds per request, not a fraction.
    absolute: bool = False

    @property
    def overhead(self) -> float:
        """The median over the rounds of ``on/off - 1``."""
        return (
            statistics.median(
                on / off for on, off in zip(self.on, self.off, strict=True)
            )
            - 1
        )

    @property
    def added(self) -> float:
        """The median over the rounds of ``on - off``, seconds per request."""
        return statistics.median(
            on - off for on, off in zip(self.on, self.off, strict=True)
        )

    @property
    def met(self) -> bool:
        """True if the target is met."""
        return (self.added if self.absolute else self.overhead) <= self.target


def _environ(path: str, web_host: str) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8080",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": web_host,
        "HTTP_USER_AGENT": "benchmarks/1",
        "HTTP_ACCEPT_ENCODING": "identity",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }


def _call(app: Callable[..., Any], path: str) -> int:
    """One request; returns the status code."""
    return int(run_app(app, _environ(path, "127.0.0.1:8080"))[0][:3])


_BODY = b"x" * 1000


def trivial_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
    """A WSGI application answering at once: 200 and 1000 bytes."""
    start_response("200 OK", [("Content-Type", "text/css"), ("Content-Length", "1000")])
    return [_BODY]


def _run(
    app: Callable[..., Any], path: str, seconds: float, ready: list[float] | None
) -> float:
    """Call ``app`` for ``seconds``; return CPU seconds per request.

    :param ready: ``[seconds since the last GET /-/ready]``, carried from
        round to round (a round may be shorter than :data:`READY_EVERY`);
        None: no ``/-/ready``.
    """
    count = 0
    cpu = time.process_time()
    start = last = time.monotonic()
    while last - start < seconds:
        if _call(app, path) != 200:
            raise SystemExit(f"benchmarks: {path} did not answer 200")
        count += 1
        now = time.monotonic()
        if ready is not None:
            ready[0] += now - last
            if ready[0] >= READY_EVERY:
                _call(app, "/-/ready")
                ready[0] = 0.0
        last = now
    return (time.process_time() - cpu) / count


def _rounds(
    row: Overhead,
    off: Callable[..., Any],
    on: Callable[..., Any],
    path: str,
    rounds: int,
    seconds: float,
) -> Overhead:
    for app in (off, on):  # warm up: templates compiled, files cached
        for _ in range(20):
            _call(app, path)
    ready = [0.0]
    for round_ in range(rounds):
        order = [(off, row.off, None), (on, row.on, ready)]
        if round_ % 2:
            order.reverse()
        for app, values, state in order:
            values.append(_run(app, path, seconds, state))
    return row


def measure(template: Path, work: Path, rounds: int, seconds: float) -> list[Overhead]:
    """Measure every path of :data:`PATHS`, off and on alternately, then
    the operations layers alone (:data:`LAYER_LABEL`)."""
    from roundup_wsgi import RequestDispatcher
    from roundup_wsgi.app import find_layer, make_app
    from roundup_wsgi.health import Operations
    from roundup_wsgi.tracker import set_tracker_web

    home = work / "operations"
    shutil.copytree(template, home)
    set_tracker_web(home, "http://127.0.0.1:8080/")
    access = logging.getLogger("roundup_wsgi.access")
    saved = access.handlers[:], access.level, access.propagate
    for handler in saved[0]:
        access.removeHandler(handler)
    devnull = open(os.devnull, "w")  # noqa: SIM115 - closed below
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    try:
        off = RequestDispatcher(str(home))
        on = make_app(home, access_log=True, metrics=True)
        # make_app's own handler (the one ``roundup-wsgi serve`` and a
        # server's ``roundup_wsgi.app:application`` log with), to /dev/null.
        for handler in access.handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(devnull)
        results = [
            _rounds(Overhead(label, target), off, on, path, rounds, seconds)
            for label, path, target in PATHS
        ]
        layers = make_app(home, access_log=True, metrics=True)
        find_layer(layers, Operations).app = trivial_app
        row = Overhead(LAYER_LABEL, LAYER_TARGET, absolute=True)
        results.append(
            _rounds(row, trivial_app, layers, "/@@file/style.css", rounds, seconds)
        )
        return results
    finally:
        for handler in access.handlers[:]:
            access.removeHandler(handler)
        for handler in saved[0]:
            access.addHandler(handler)
        access.setLevel(saved[1])
        access.propagate = saved[2]
        devnull.close()


#: (label, path, request headers, target overhead) of the served rows.
SERVED_PATHS: tuple[tuple[str, str, dict[str, str], float], ...] = (
    ("GET /issue1", "/issue1", {}, 0.03),
    (
        "GET /@@file/style.css, browser Accept-Encoding",
        "/@@file/style.css",
        {"Accept-Encoding": "gzip, deflate, br"},
        0.10,
    ),
)


def measure_served(
    kind: str,
    command: Callable[[int, str], list[str]],
    template: Path,
    work: Path,
    rounds: int,
    seconds: int,
    wrk: str,
) -> list[Overhead]:
    """The operations' cost under a real server: CPU per request of the
    server process (and its workers) as :mod:`benchmarks.load` reads it
    from ``/proc``, for :data:`SERVED_PATHS`.

    Two servers of ``kind`` run side by side, each on its own copy of the
    tracker: *off* serves ``benchmarks.bare:application`` (a bare
    dispatcher), *on* ``roundup_wsgi.app:application`` with
    ``ROUNDUP_WSGI_ACCESS_LOG`` and ``ROUNDUP_WSGI_METRICS`` on (its access
    log goes to the server's stderr, a file, as a service manager would
    keep it) and ``GET /-/ready`` sent every :data:`READY_EVERY` seconds
    while it is loaded.  Each round loads off and on in turn with wrk for
    ``seconds`` (who goes first alternates), so both see the machine's
    load of that moment.

    :param kind: the server, as the rows' labels name it (``"waitress"``,
        ``"waitress, 4 threads"``).
    :param command: ``(port, "module:callable") -> argv`` of the server.
    :returns: one :class:`Overhead` per path, values in CPU seconds per
        request; the label names the server ``kind``.
    :raises RuntimeError: wrk failed (from :func:`benchmarks.load.run_wrk`).
    :raises SystemExit: a request did not answer 200.
    """
    import threading
    import urllib.request
    from contextlib import ExitStack

    from . import load, serving

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    name = re.sub(r"\W+", "-", kind).strip("-")  # "waitress, 4 threads": a path
    rows = [
        Overhead(f"{kind}: {label}", target) for label, _, _, target in SERVED_PATHS
    ]
    with ExitStack() as stack:
        started = {}
        for side, app, extra in (
            ("off", "benchmarks.bare:application", {}),
            (
                "on",
                "roundup_wsgi.app:application",
                {"ROUNDUP_WSGI_ACCESS_LOG": "on", "ROUNDUP_WSGI_METRICS": "on"},
            ),
        ):
            started[side] = serving.serve_copy(
                stack, command, app, template, work, f"ops-{name}-{side}", extra
            )
        for _, path, headers, _ in SERVED_PATHS:
            for process in started.values():
                request = urllib.request.Request(
                    process.url + path[1:], headers=headers
                )
                with opener.open(request, timeout=120) as response:
                    if response.status != 200:
                        raise SystemExit(
                            f"benchmarks: {path} answered {response.status}"
                        )
                    response.read()

        def poll_ready(url: str, stop: threading.Event) -> None:
            while not stop.wait(READY_EVERY):
                opener.open(url, timeout=30).read()

        for round_ in range(rounds):
            for row, (_, path, headers, _) in zip(rows, SERVED_PATHS, strict=True):
                order = [("off", row.off), ("on", row.on)]
                if round_ % 2:
                    order.reverse()
                for side, values in order:
                    process = started[side]
                    assert process.proc is not None
                    stop = threading.Event()
                    poller = threading.Thread(
                        target=poll_ready,
                        args=(process.url + "-/ready", stop),
                        daemon=True,
                    )
                    if side == "on":
                        poller.start()
                    before = load.cpu_seconds(process.proc.pid)
                    result = load.run_wrk(
                        process.url + path[1:],
                        seconds=seconds,
                        connections=4,
                        headers=headers,
                        wrk=wrk,
                    )
                    cpu = load.cpu_seconds(process.proc.pid) - before
                    stop.set()
                    if side == "on":
                        poller.join()
                    if result.errors:
                        raise SystemExit(
                            f"benchmarks: {result.errors} errors on {path} ({side})"
                        )
                    values.append(cpu / max(result.requests, 1))
    return rows


def render(rows: list[Overhead]) -> str:
    """The table: CPU per request off and on, the overhead and the target."""
    lines = [
        ("request", "off us CPU", "on us CPU", "overhead", "target", "met"),
    ]
    for row in rows:
        if row.absolute:
            overhead = f"+{row.added * 1e6:.1f} us"
            target = f"<= {row.target * 1e6:.0f} us"
        else:
            overhead = f"{row.overhead * 100:+.1f}%"
            target = f"<= {row.target * 100:.0f}%"
        lines.append(
            (
                row.label,
                f"{statistics.median(row.off) * 1e6:.1f}",
                f"{statistics.median(row.on) * 1e6:.1f}",
                overhead,
                target,
                "yes" if row.met else "no",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    out = []
    for number, line in enumerate(lines):
        out.append(
            "  ".join(
                cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
                for i, cell in enumerate(line)
            )
        )
        if number == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.operations", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="12 rounds of 0.5 s")
    parser.add_argument("--issues", type=int, default=100, help="issues (100)")
    parser.add_argument(
        "--servers",
        default="",
        help="also measure under these servers (comma-separated: waitress,"
        "gunicorn; needs wrk), 3 rounds of 10 s (--quick: 1 of 2 s)",
    )
    args = parser.parse_args(argv)
    rounds, seconds = (12, 0.5) if args.quick else (20, 1.5)
    from . import seed

    served: list[Overhead] = []
    with tempfile.TemporaryDirectory(prefix="roundup-wsgi-ops-") as tmp:
        work = Path(tmp)
        seed.build_tracker(work / "template", args.issues, 1024 * 1024)
        kinds = [name.strip() for name in args.servers.split(",") if name.strip()]
        if kinds:
            from .__main__ import SERVER_KINDS
            from .load import find_wrk

            unknown = [name for name in kinds if name not in SERVER_KINDS]
            if unknown:
                parser.error(
                    f"unknown server {unknown[0]!r}: use {', '.join(SERVER_KINDS)}"
                )
            wrk = find_wrk()
            served_rounds, served_seconds = (1, 2) if args.quick else (3, 10)
            for kind in kinds:
                label, command = SERVER_KINDS[kind]
                served += measure_served(
                    label,
                    command,
                    work / "template",
                    work,
                    served_rounds,
                    served_seconds,
                    wrk,
                )
        rows = measure(work / "template", work, rounds, seconds)
    print(
        f"Operations on (access log, metrics, /-/ready every {READY_EVERY:.0f} s) "
        "vs off, "
        f"in process, {rounds} rounds of {seconds:g} s (median of each "
        "round's on/off):"
    )
    print(render(rows))
    if served:
        print()
        print(
            "Under a server: CPU per request of the server's processes, "
            f"{served_rounds} round(s) of {served_seconds} s:"
        )
        print(render(served))


if __name__ == "__main__":
    main()
