"""The cluster recipe (deploy/cluster/) run on loopback (imported as ``cluster``).

:class:`AppHost` is one app host: a gunicorn master with 2 sync workers
started with ``deploy/gunicorn.conf.py``, bound to its own loopback
address (``127.0.1.N``: all of 127.0.0.0/8 is loopback on Linux) and
serving the shared tracker home, with its own drain file
(``ROUNDUP_WSGI_DRAIN_FILE``).  It can be killed (SIGKILL to the master and
each worker, by PID), stopped gracefully (SIGTERM), drained and started
again.

:class:`Balancer` is HAProxy started from ``deploy/cluster/haproxy.cfg``
with the example addresses, ports and paths swapped for the test's
(:func:`helpers.deploy.rewrite` fails when the recipe no longer holds them)
and its log on stdout; :meth:`Balancer.servers` reads each server's state
through the runtime API (``show stat`` on the admin socket).

Everything is stopped by PID, never by name.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from .deploy import DEPLOY_DIR, rewrite
from .servers import free_port, log_section, stop_process

__all__ = [
    "HOST_ADDRESSES",
    "AppHost",
    "Balancer",
    "ClusterError",
    "free_port_on",
    "process_tree",
]

#: The app hosts' addresses (loopback; each host binds its own).
HOST_ADDRESSES = ("127.0.1.1", "127.0.1.2", "127.0.1.3")
#: The recipe files.
CLUSTER_DIR = DEPLOY_DIR / "cluster"
#: Seconds to wait for a host to become ready / HAProxy to change state.
START_TIMEOUT = 60.0
#: Seconds gunicorn may take to stop after SIGTERM (graceful_timeout is 30).
STOP_TIMEOUT = 40.0
#: The readiness page HAProxy checks (roundup_wsgi's operations endpoints).
READY_PATH = "/-/ready"

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ClusterError(RuntimeError):
    """A host or the balancer did not reach the expected state in time (the
    message has the log tail)."""


def free_port_on(addresses: Sequence[str]) -> int:
    """A TCP port free on every one of ``addresses`` a moment ago."""
    for _ in range(50):
        port = free_port()
        try:
            for address in addresses:
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                    sock.bind((address, port))
        except OSError:
            continue
        return port
    raise ClusterError(f"no port free on all of {', '.join(addresses)}")


def _parent_pids() -> dict[int, int]:
    """Every process's parent, from ``/proc/<pid>/stat``."""
    parents = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name (field 2) is in parentheses and may hold spaces.
        fields = stat[stat.rfind(")") + 2 :].split()
        parents[int(entry)] = int(fields[1])
    return parents


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (parents before children)."""
    parents = _parent_pids()
    tree = [pid]
    for each in tree:
        tree += [child for child, parent in parents.items() if parent == each]
    return tree


def cpu_seconds(pids: Sequence[int]) -> float:
    """User plus system CPU seconds used so far by ``pids`` and by their
    children that have exited and been waited for (``proc(5)``: utime,
    stime, cutime and cstime of ``/proc/<pid>/stat``; PostgreSQL's
    postmaster reaps one backend per connection).  Processes gone are
    skipped.  Pass a whole process tree: a live child counts itself, a
    reaped one counts in its parent."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        total += sum(int(value) for value in fields[11:15])
    return total / ticks


def _command_line(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


class AppHost:
    """One app host: gunicorn (``deploy/gunicorn.conf.py``, 2 sync workers)
    bound to ``address:port`` (``-b``, as ``GUNICORN_CMD_ARGS`` in
    ``deploy/cluster/roundup-wsgi.env``) serving ``home``.

    :param name: the HAProxy server name, e.g. ``app1``.
    :param env: extra environment (``ROUNDUP_TRACKER_HOME`` etc. are set).
    """

    def __init__(
        self,
        name: str,
        address: str,
        port: int,
        home: Path,
        work_dir: Path,
        env: Mapping[str, str] | None = None,
        ready_path: str = READY_PATH,
    ) -> None:
        self.name = name
        self.address = address
        self.port = port
        self.home = home
        self.work_dir = Path(work_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.drain_file = self.work_dir / f"{name}.drain"
        self.log_file = self.work_dir / f"{name}.log"
        self.ready_path = ready_path
        self.extra_env = dict(env or {})
        self.proc: subprocess.Popen[bytes] | None = None
        #: Every worker PID seen, to make sure none outlives the test.
        self.seen: set[int] = set()
        self.starts = 0

    @property
    def url(self) -> str:
        """``http://ADDRESS:PORT/``."""
        return f"http://{self.address}:{self.port}/"

    @property
    def bind(self) -> str:
        return f"{self.address}:{self.port}"

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            str(DEPLOY_DIR / "gunicorn.conf.py"),
            "-b",
            self.bind,
            "--name",
            f"roundup-{self.name}",
        ]

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "ROUNDUP_TRACKER_HOME": str(self.home),
                "ROUNDUP_WSGI_DRAIN_FILE": str(self.drain_file),
                "ROUNDUP_WSGI_TRUSTED_PROXIES": "127.0.0.1",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.extra_env)
        return env

    def start(self, wait: bool = True) -> None:
        """Start gunicorn; with ``wait``, until ``ready_path`` answers 200.

        :raises ClusterError: it exited or was not ready within
            :data:`START_TIMEOUT` seconds.
        """
        self.starts += 1
        with open(self.log_file, "ab") as log:
            log.write(f"=== start {self.starts} ===\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.environment(),
                cwd=str(self.work_dir),
            )
        if wait:
            self.wait_ready()

    def ready_status(self) -> int | None:
        """The status of ``GET ready_path`` on this host (None: no answer),
        asked as HAProxy's check does: from the trusted proxy's address,
        naming it in X-Forwarded-For (a trusted proxy naming no client is
        refused ``/-/``)."""
        ask = urllib.request.Request(
            self.url.rstrip("/") + self.ready_path,
            headers={"X-Forwarded-For": "127.0.0.1"},
        )
        try:
            with _OPENER.open(ask, timeout=5) as r:
                return int(r.status)
        except urllib.error.HTTPError as error:
            return int(error.code)
        except OSError:
            return None

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Wait until ``ready_path`` answers 200."""
        deadline = time.monotonic() + timeout
        while self.ready_status() != 200:
            if self.proc is None or self.proc.poll() is not None:
                raise ClusterError(f"{self.name} exited\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise ClusterError(f"{self.name} not ready\n{self.log_tail()}")
            time.sleep(0.2)
        self.seen.update(self.pids()[1:])

    def pids(self) -> list[int]:
        """The master's PID and its workers'."""
        if self.proc is None or self.proc.poll() is not None:
            return []
        return process_tree(self.proc.pid)

    def kill(self) -> list[int]:
        """SIGKILL the master and every worker, by PID; return the PIDs."""
        pids = self.pids()
        self.seen.update(pids[1:])
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=STOP_TIMEOUT)
        return pids

    def terminate(self) -> None:
        """SIGTERM the master (gunicorn's graceful stop) and wait for it."""
        self.seen.update(self.pids()[1:])
        stop_process(self.proc, signal.SIGTERM, STOP_TIMEOUT)

    def drain(self) -> None:
        """Create the drain file: ``/-/ready`` answers 503 from now on."""
        self.drain_file.write_text("draining\n")

    def undrain(self) -> None:
        """Remove the drain file."""
        self.drain_file.unlink(missing_ok=True)

    def cleanup(self) -> None:
        """Stop the master; SIGKILL any worker seen that is still ours."""
        self.terminate()
        marker = self.bind.encode()
        for pid in self.seen:
            if marker in _command_line(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self.undrain()

    def log_tail(self, lines: int = 40) -> str:
        return log_section(self.log_file, lines)


class Server(Protocol):
    """What :class:`Balancer` needs of a host: its name and ``address:port``."""

    @property
    def name(self) -> str: ...

    @property
    def bind(self) -> str: ...


class Balancer:
    """HAProxy from ``deploy/cluster/haproxy.cfg`` on ``127.0.0.1:port`` in
    front of ``hosts``.

    :param haproxy: the haproxy executable.
    :param check_path: the health check's path (the recipe's ``/-/ready``).
    """

    def __init__(
        self,
        haproxy: str,
        hosts: Sequence[Server],
        port: int,
        work_dir: Path,
        check_path: str = READY_PATH,
    ) -> None:
        self.haproxy = haproxy
        self.hosts = list(hosts)
        self.port = port
        self.work_dir = Path(work_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.socket_path = self.work_dir / "admin.sock"
        self.config_file = self.work_dir / "haproxy.cfg"
        self.log_file = self.work_dir / "haproxy.log"
        self.check_path = check_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def config(self) -> str:
        """The recipe with the test's addresses, ports and paths."""
        servers = "".join(
            f"    server {host.name} {host.bind}\n" for host in self.hosts
        )
        return rewrite(
            (CLUSTER_DIR / "haproxy.cfg").read_text(),
            {
                "    log /dev/log local0\n": "    log stdout format raw local0\n",
                "/run/haproxy/admin.sock": str(self.socket_path),
                "    bind :80\n": f"    bind 127.0.0.1:{self.port}\n",
                "uri /-/ready ": f"uri {self.check_path} ",
                "hdr Host bugs.example.org": f"hdr Host 127.0.0.1:{self.port}",
                "hdr X-Forwarded-For 10.0.0.10": "hdr X-Forwarded-For 127.0.0.1",
                "    server app1 10.0.0.11:8080\n"
                "    server app2 10.0.0.12:8080\n"
                "    server app3 10.0.0.13:8080\n": servers,
            },
        )

    def start(self) -> None:
        """Check the configuration (``haproxy -c``), start HAProxy in the
        foreground and wait until every host is UP.

        :raises ClusterError: the configuration is invalid, or HAProxy did
            not come up within :data:`START_TIMEOUT` seconds.
        """
        self.config_file.write_text(self.config())
        checked = subprocess.run(
            [self.haproxy, "-c", "-f", str(self.config_file)],
            capture_output=True,
            text=True,
            check=False,
        )
        if checked.returncode != 0:
            raise ClusterError(f"haproxy -c failed:\n{checked.stdout}{checked.stderr}")
        with open(self.log_file, "ab") as log:
            self.proc = subprocess.Popen(
                [self.haproxy, "-db", "-f", str(self.config_file)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=str(self.work_dir),
            )
        for host in self.hosts:
            self.wait_state(host.name, "UP")

    def stop(self) -> None:
        """Stop HAProxy by its PID (SIGUSR1 is its soft stop; SIGTERM hard)."""
        stop_process(self.proc, signal.SIGTERM, 10)

    def command(self, text: str) -> str:
        """Send one runtime API command to the admin socket; return the answer."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(str(self.socket_path))
            sock.sendall(text.encode() + b"\n")
            chunks = []
            while data := sock.recv(65536):
                chunks.append(data)
        return b"".join(chunks).decode()

    def servers(self) -> dict[str, dict[str, str]]:
        """``show stat`` of the ``roundup`` backend's servers, by name (the
        CSV columns of HAProxy's management guide, 9.1: ``status``,
        ``scur``, ``qcur``, ``stot``, ...)."""
        text = self.command("show stat").lstrip("# ")
        rows = csv.DictReader(io.StringIO(text))
        return {
            row["svname"]: row
            for row in rows
            if row.get("pxname") == "roundup"
            and row.get("svname") not in ("FRONTEND", "BACKEND")
        }

    def wait_state(
        self, name: str, status: str, timeout: float = START_TIMEOUT
    ) -> float:
        """Wait until server ``name``'s status is exactly ``status`` (``UP``,
        ``DOWN``); return the seconds waited.

        :raises ClusterError: not within ``timeout`` seconds.
        """
        start = time.monotonic()
        last = "?"
        while True:
            if self.proc is None or self.proc.poll() is not None:
                raise ClusterError(f"haproxy exited\n{self.log_tail()}")
            try:
                last = self.servers()[name]["status"]
            except OSError:
                last = "no admin socket"
            if last == status:
                return time.monotonic() - start
            if time.monotonic() - start > timeout:
                raise ClusterError(
                    f"{name} stayed {last!r}, not {status!r}, for {timeout:.0f}s\n"
                    f"{self.log_tail()}"
                )
            time.sleep(0.1)

    def wait_idle(self, name: str, timeout: float = START_TIMEOUT) -> float:
        """Wait until server ``name`` has no request in progress (``scur``
        0); return the seconds waited."""
        start = time.monotonic()
        while int(self.servers()[name]["scur"] or 0) > 0:
            if time.monotonic() - start > timeout:
                raise ClusterError(f"{name} still busy after {timeout:.0f}s")
            time.sleep(0.05)
        return time.monotonic() - start

    def log_tail(self, lines: int = 30) -> str:
        return log_section(self.log_file, lines)

    def failures(self) -> list[str]:
        """The log lines (``option httplog``) of requests that got a 5xx or
        ended abnormally (a termination state other than ``----``), as
        ``server status state "request line"``."""
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return []
        found = []
        for match in _HTTPLOG.finditer(text):
            server, status, state, request, _request_id = match.groups()
            if int(status) >= 500 or int(status) < 0 or state != "----":
                found.append(f"{server} {status} {state} {request}")
        return found


#: One ``option httplog`` line: client, date, frontend, backend/server,
#: timers, status, bytes, cookies, termination state, ..., request line and
#: the request's id (the recipe's ``%ID``; none in the plain httplog format).
_HTTPLOG = re.compile(
    r"^\S+ \[\S+\] \S+ \S+/(\S+) \S+ (-?\d+) \S+ \S+ \S+ (\S{4}) .*?(\"[^\"]*\")"
    r"(?: (\S+))?$",
    re.MULTILINE,
)
