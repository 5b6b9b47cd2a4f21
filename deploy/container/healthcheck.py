#!/opt/roundup-wsgi/bin/python
"""The image's HEALTHCHECK: exit 0 when ``GET /-/health`` answers 200.

It asks the first address of ``ROUNDUP_BIND`` (a wildcard address as
loopback), from inside the container, so the answer is allowed (loopback).
"""

from __future__ import annotations

import http.client
import os
import sys


def target(bind: str) -> tuple[str, int]:
    """Host and port to ask for gunicorn's first ``--bind`` value *bind*."""
    first = bind.replace(",", " ").split()[0]
    host, _, port = first.rpartition(":")
    host = host.strip("[]")
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return host, int(port)


def main() -> int:
    """Return 0 when healthy, 1 otherwise (Docker's HEALTHCHECK contract)."""
    host, port = target(os.environ.get("ROUNDUP_BIND", "0.0.0.0:8080"))
    connection = http.client.HTTPConnection(host, port, timeout=3)
    try:
        connection.request("GET", "/-/health")
        status = connection.getresponse().status
    except OSError as exc:
        print(f"/-/health: {exc}")
        return 1
    finally:
        connection.close()
    print(f"/-/health: {status}")
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
