"""Health, readiness and metrics under ``/-/``, for load balancers and
monitoring.

* ``GET /-/health``: liveness; 200 ``{"status": "ok"}`` while the process
  answers.  Opens no database.
* ``GET /-/ready``: readiness; 200 with a JSON body naming each check
  (:mod:`roundup_wsgi.readiness`: each tracker's database, db directory and
  Redis sessions, the process's ``files`` and ``stopping``), or 503 with
  ``Retry-After`` naming the failing ones.  One more check, ``drain``, fails
  while the *drain file* exists (remove a server from a load balancer
  before a restart).
* ``GET /-/metrics``: Prometheus metrics (:mod:`roundup_wsgi.metrics`), when
  enabled.

With several trackers (``/<name>/``), ``/-/ready`` at the root checks all of
them and ``/<name>/-/ready`` that one.  ``-`` cannot be a Roundup class name
(``hyperdb.Class.class_re`` requires a letter first), so no tracker page is
hidden by these paths.

Only clients in the allowed networks get these answers (default: loopback
and the trusted proxies); for others the request goes on to the tracker,
which answers as it would for any unknown path.  A request from a trusted
proxy that names no client in ``X-Forwarded-For`` is one of those others
(fail closed: the server may have dropped the header, see
:data:`roundup_wsgi.wsgi.proxy.CLIENT_UNKNOWN`).  The bodies hold no paths,
versions or tracebacks.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .readiness import (
    READY_INTERVAL,
    Readiness,
    begin_stop,
    fd_reserve,
    files_check,
    stopping,
)
from .webcheck import SAFE_METHODS as _SAFE
from .wsgi.finish import direct_call
from .wsgi.proxy import CLIENT_UNKNOWN, parse_networks
from .wsgi.types import StartResponse

__all__ = [
    "DEFAULT_NETWORKS",
    "READY_INTERVAL",
    "RETRY_AFTER",
    "Operations",
    "Readiness",
    "begin_stop",
    "fd_reserve",
    "files_check",
    "stopping",
]

logger = logging.getLogger("roundup_wsgi.health")

#: Networks allowed by default, besides the trusted proxies: loopback.
DEFAULT_NETWORKS = ("127.0.0.0/8", "::1/128")
#: ``Retry-After`` of a 503 readiness answer, in seconds.
RETRY_AFTER = 5
#: The operations endpoints, by the path after ``/-/``.
ENDPOINTS = ("health", "ready", "metrics")


class Operations:
    """WSGI middleware answering ``/-/health``, ``/-/ready`` and
    ``/-/metrics`` (see the module documentation); every other request goes
    to ``app``.

    :param app: the application: one tracker's dispatcher, or a
        :class:`~roundup_wsgi.wsgi.mount.Mount`.
    :param trackers: ``{name: RequestDispatcher}``; one tracker at the root
        is named ``""``.
    :param networks: addresses or networks allowed to read the answers
        (compared with ``REMOTE_ADDR``, after the trusted proxies' headers
        were applied); None: :data:`DEFAULT_NETWORKS`.
    :param drain_file: while this path exists, ``/-/ready`` fails with the
        check ``drain``.
    :param metrics: the :class:`roundup_wsgi.metrics.Metrics`, or None.
    :param check: called with the environ of each request whose method is
        not GET, HEAD or OPTIONS before ``app`` answers it (the
        :class:`~roundup_wsgi.webcheck.WebAddressCheck`), or None.
    :raises ValueError: a network that is no address or network.
    """

    def __init__(
        self,
        app: Callable[..., Iterable[bytes]],
        trackers: Mapping[str, Any],
        *,
        networks: Iterable[str] | None = None,
        drain_file: str | None = None,
        metrics: Any = None,
        check: Callable[[dict[str, Any]], object] | None = None,
    ) -> None:
        self.app = app
        self._call: Callable[..., Iterable[bytes]] = direct_call(app)
        self.check = check
        self.mounted = "" not in trackers
        self.readiness = {name: Readiness(d) for name, d in trackers.items()}
        self.networks = parse_networks(
            list(networks) if networks is not None else DEFAULT_NETWORKS,
            "health network",
        )
        self.drain_file = drain_file
        #: Whether the drain file existed at the last ``/-/ready`` (a
        #: change is logged at INFO).
        self.draining = False
        self.metrics = metrics
        self._warned_unknown = False

    def client_allowed(self, environ: Mapping[str, Any]) -> bool:
        """True if the request's client may read the answers: its
        ``REMOTE_ADDR`` is allowed (:meth:`allowed`) and it is not a trusted
        proxy's request naming no client (logged once per process)."""
        if environ.get(CLIENT_UNKNOWN):
            if not self._warned_unknown:
                self._warned_unknown = True
                logger.warning(
                    "a trusted proxy (%r) asked for %r without X-Forwarded-For: "
                    "refused (404), the client is unknown; let the proxy send "
                    "X-Forwarded-For (its own checks too), and under "
                    "waitress-serve pass --no-clear-untrusted-proxy-headers",
                    environ.get("REMOTE_ADDR", ""),
                    environ.get("PATH_INFO", ""),
                )
            return False
        return self.allowed(environ.get("REMOTE_ADDR", ""))

    def allowed(self, remote_addr: str) -> bool:
        """True if ``remote_addr`` is in an allowed network (IPv4-mapped IPv6
        unmapped); False for anything that is no IP address (a Unix
        socket)."""
        try:
            address = ipaddress.ip_address(remote_addr.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return any(address.version == n.version and address in n for n in self.networks)

    def route(self, path: str) -> tuple[str, list[str]] | None:
        """``(endpoint, tracker names)`` for an operations path, else None."""
        head, sep, endpoint = path.rpartition("/-/")
        if not sep or endpoint not in ENDPOINTS:
            return None
        if head == "":
            return endpoint, list(self.readiness)
        name = head[1:]
        if self.mounted and name in self.readiness:
            return endpoint, [name]
        return None

    def __call__(
        self, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        """Answer one request (PEP 3333 middleware)."""
        path = environ.get("PATH_INFO", "")
        if "/-/" in path:
            found = self.route(path)
            if found is not None and self.client_allowed(environ):
                if self.metrics is not None:  # scrapes are not health traffic
                    kind = "metrics" if found[0] == "metrics" else "health"
                    name = found[1][0] if len(found[1]) == 1 else ""
                    self.metrics.track(environ, name, kind)
                return self._answer(environ, start_response, *found)
        if self.metrics is not None:
            self.metrics.track_request(environ, path, self.mounted)
        if self.check is not None and environ.get("REQUEST_METHOD") not in _SAFE:
            self.check(environ)
        return self._call(environ, start_response)

    def _answer(
        self,
        environ: dict[str, Any],
        start_response: StartResponse,
        endpoint: str,
        names: list[str],
    ) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD"):
            return _send(
                start_response,
                "405 Method Not Allowed",
                {"status": "method not allowed"},
                method,
                [("Allow", "GET, HEAD")],
            )
        if endpoint == "health":
            return _send(start_response, "200 OK", {"status": "ok"}, method)
        if endpoint == "metrics":
            if self.metrics is None:
                return _send(
                    start_response,
                    "404 Not Found",
                    {"status": "metrics are off"},
                    method,
                )
            body, content_type = self.metrics.exposition()
            headers = [
                ("Content-Type", content_type),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-store"),
            ]
            start_response("200 OK", headers)
            return [] if method == "HEAD" else [body]
        return self._ready(start_response, names, method)

    def _ready(
        self, start_response: StartResponse, names: list[str], method: str
    ) -> Iterable[bytes]:
        checks: dict[str, str] = {}
        checks["stopping"] = "the server is stopping" if stopping() else "ok"
        checks["files"] = files_check()
        if self.drain_file:
            draining = os.path.exists(self.drain_file)
            checks["drain"] = "draining: the drain file exists" if draining else "ok"
            if draining != self.draining:
                self.draining = draining
                logger.info(
                    "drain file %s %s",
                    self.drain_file,
                    "exists: /-/ready fails its drain check"
                    if draining
                    else "removed: the drain check of /-/ready passes again",
                )
        for name in names:
            prefix = f"{name}:" if self.mounted else ""
            for check, state in self.readiness[name].checks().items():
                checks[prefix + check] = state
        failing = [name for name, state in checks.items() if state != "ok"]
        body: dict[str, Any] = {"status": "fail" if failing else "ok", "checks": checks}
        if failing:
            body["failing"] = failing
            return _send(
                start_response,
                "503 Service Unavailable",
                body,
                method,
                [("Retry-After", str(RETRY_AFTER))],
            )
        return _send(start_response, "200 OK", body, method)


def _send(
    start_response: StartResponse,
    status: str,
    body: Mapping[str, Any],
    method: str,
    extra: list[tuple[str, str]] | None = None,
) -> list[bytes]:
    """Send ``body`` as JSON, not to be cached."""
    data = (json.dumps(body, sort_keys=True) + "\n").encode()
    headers = [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(data))),
        ("Cache-Control", "no-store"),
        *(extra or []),
    ]
    start_response(status, headers)
    return [] if method == "HEAD" else [data]
