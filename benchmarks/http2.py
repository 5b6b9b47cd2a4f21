"""HTTP/2 against HTTP/1.1 with keep-alive on the same granian, with h2load.

Run from the repository root, with the test extras installed, Debian's
``nghttp2-client`` (h2load) and openssl::

    python -m benchmarks.http2 [--seconds 10] [--rounds 3] [--clients 4]

It builds a small seeded tracker (``benchmarks/seed.py``), makes a
self-signed certificate for 127.0.0.1 and serves
``roundup_wsgi.app:application`` (default options) with granian's WSGI
interface over TLS, one worker, twice in turn:

* ``--http 2``: the HTTP/2 recipe (README, "HTTP/2 (over TLS)");
* ``--http auto``: the same server offering h2 and HTTP/1.1 by ALPN.

For each it runs h2load (``-D SECONDS --warm-up-time 2``, ``-c CLIENTS``,
one thread) for the cached ``GET /@@file/style.css`` with a browser's
``Accept-Encoding`` (the response cache's gzip answer): over h2 with one
stream at a time per connection (``-m 1``, as HTTP/1.1 keep-alive allows),
over h2 with 10 concurrent streams (``-m 10``, what a browser does), and,
against ``--http auto``, over HTTP/1.1 with keep-alive (``--h1``).  The
rows alternate within each round; the table shows each row's median
requests per second and the ratio to HTTP/1.1.  Target (issue 23): h2
with ``-m 1`` at least as many requests per second as HTTP/1.1.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from helpers import servers  # noqa: E402 - the test suite's server harness

from . import seed  # noqa: E402

#: The request measured: the cached static answer, as a browser asks.
PATH = "/@@file/style.css"
HEADERS = ("Accept-Encoding: gzip, deflate, br",)
#: Seconds a server may take to answer its first request over TLS.
START_TIMEOUT = 120.0
#: h2load's summary line: ``finished in 10.00s, 1234.50 req/s, 1.2MB/s``.
_FINISHED = re.compile(r"finished in [\d.]+m?s, ([\d.]+) req/s")
#: h2load's counts line: ``requests: 100 total, 100 started, 100 done,
#: 100 succeeded, 0 failed, 0 errored, 0 timeout``.
_REQUESTS = re.compile(
    r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded"
)
#: h2load's status line: ``status codes: 100 2xx, 0 3xx, 0 4xx, 0 5xx``.
_STATUS = re.compile(r"status codes: (\d+) 2xx")


@dataclass(frozen=True)
class Case:
    """One h2load run: the granian ``--http`` value and h2load's options."""

    label: str
    http: str
    options: tuple[str, ...]


#: The rows, in the order each round runs them.
CASES = (
    Case("granian --http 2, h2, 1 stream per connection", "2", ("-m", "1")),
    Case("granian --http 2, h2, 10 streams per connection", "2", ("-m", "10")),
    Case("granian --http auto, h2, 1 stream per connection", "auto", ("-m", "1")),
    Case("granian --http auto, HTTP/1.1 keep-alive", "auto", ("--h1",)),
)
#: The row the others are compared with.
BASELINE = CASES[-1].label


def parse_h2load(output: str) -> float:
    """Requests per second of one h2load run.

    :raises ValueError: the output has no summary, or some request did not
        succeed with a 2xx answer (the message quotes the counts).
    """
    counts = _REQUESTS.search(output)
    rate = _FINISHED.search(output)
    status = _STATUS.search(output)
    if counts is None or rate is None or status is None:
        raise ValueError(f"h2load printed no summary:\n{output[-2000:]}")
    _total, done, succeeded = (int(n) for n in counts.groups())
    if done == 0 or succeeded != done or int(status.group(1)) != done:
        raise ValueError(f"h2load: not every request succeeded: {counts.group(0)}")
    return float(rate.group(1))


def certificate(openssl: str, directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate and its key for 127.0.0.1 (PKCS#8 key, as
    granian wants)."""
    from helpers.deploy import self_signed_certificate

    return self_signed_certificate(openssl, directory)


def granian_tls(port: int, http: str, cert: Path, key: Path) -> list[str]:
    """granian's WSGI interface over TLS with ``--http`` ``http``."""
    return [
        *servers.granian_command(port),
        "--http",
        http,
        "--ssl-certificate",
        str(cert),
        "--ssl-keyfile",
        str(key),
    ]


def _wait_answering(h2load: str, url: str, process: subprocess.Popen[bytes]) -> None:
    """Ask for ``url`` over h2 (one h2load request) until it succeeds (the
    application is built on its first request)."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            raise SystemExit(f"benchmarks.http2: granian exited ({process.returncode})")
        done = subprocess.run(
            [h2load, "-n", "1", "-c", "1", url],
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT,
            check=False,
        )
        try:
            parse_h2load(done.stdout)
            return
        except ValueError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"benchmarks.http2: {url} did not answer")
        time.sleep(0.5)


@contextmanager
def serving(
    h2load: str, home: Path, http: str, cert: Path, key: Path, logs: Path
) -> Iterator[str]:
    """Serve ``home`` with granian ``--http http`` over TLS; yield the
    https URL of :data:`PATH`; stop it by PID."""
    port = servers.free_port()
    logs.mkdir(parents=True, exist_ok=True)
    env = servers.ServerProcess([], port, logs).environment()
    env["ROUNDUP_TRACKER_HOME"] = str(home)
    with (
        open(logs / f"granian-{http}.log", "ab") as log,
        subprocess.Popen(
            granian_tls(port, http, cert, key),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        ) as process,
    ):
        try:
            url = f"https://127.0.0.1:{port}{PATH}"
            _wait_answering(h2load, url, process)
            yield url
        finally:
            servers.stop_process(process)


def run_h2load(h2load: str, url: str, case: Case, seconds: int, clients: int) -> float:
    """Requests per second of ``case`` against ``url``."""
    done = subprocess.run(
        [
            h2load,
            "-D",
            str(seconds),
            "--warm-up-time",
            "2",
            "-c",
            str(clients),
            "-t",
            "1",
            *(item for header in HEADERS for item in ("-H", header)),
            *case.options,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=False,
    )
    return parse_h2load(done.stdout + done.stderr)


def render(rates: dict[str, list[float]]) -> str:
    """The table: each row's median requests per second and its ratio to
    HTTP/1.1 (:data:`BASELINE`)."""
    base = statistics.median(rates[BASELINE])
    rows = [
        (
            label,
            f"{statistics.median(values):,.0f}",
            " ".join(f"{value:,.0f}" for value in values),
            f"{statistics.median(values) / base:.2f}",
        )
        for label, values in rates.items()
    ]
    header = ("h2load, GET /@@file/style.css (gzip)", "req/s", "rounds", "vs h1")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
    return "\n".join(
        "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        )
        for row in [header, tuple("-" * w for w in widths), *rows]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.http2", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--seconds", type=int, default=10, help="per run (10)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (3)")
    parser.add_argument("--clients", type=int, default=4, help="connections (4)")
    args = parser.parse_args(argv)
    h2load = shutil.which("h2load")
    if h2load is None:
        parser.error("h2load is not installed: apt-get install nghttp2-client")
    openssl = shutil.which("openssl")
    if openssl is None:
        parser.error("openssl is not installed: apt-get install openssl")
    rates: dict[str, list[float]] = {case.label: [] for case in CASES}
    with tempfile.TemporaryDirectory(prefix="roundup-wsgi-h2-") as tmp:
        work = Path(tmp)
        home = work / "tracker"
        seed.build_tracker(home, 10, 1024)
        cert, key = certificate(openssl, work)
        with ExitStack() as stack:
            urls = {
                http: stack.enter_context(
                    serving(h2load, home, http, cert, key, work / "logs")
                )
                for http in sorted({case.http for case in CASES})
            }
            for number in range(args.rounds):
                cases = CASES if number % 2 == 0 else tuple(reversed(CASES))
                for case in cases:
                    rate = run_h2load(
                        h2load, urls[case.http], case, args.seconds, args.clients
                    )
                    rates[case.label].append(rate)
                    print(f"round {number + 1}: {case.label}: {rate:,.0f} req/s")
    print(
        f"granian over TLS, 1 worker; h2load -c {args.clients} -t 1 -D {args.seconds} "
        f"--warm-up-time 2, {args.rounds} round(s):"
    )
    print(render(rates))


if __name__ == "__main__":
    main()
