"""One in-process WSGI request as a server makes it, shared by the
benchmarks that call an application directly (cpu.py, operations.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def run_app(app: Callable[..., Any], environ: dict[str, Any]) -> list[str]:
    """Call ``app`` with ``environ``, read its app_iter to the end (bytes
    dropped, as is whatever goes to the write callable) and close it
    (PEP 3333, "Specification Details": ``close()`` if present).

    :returns: every status line passed to ``start_response``, in order
        (more than one only when exc_info replaced the first).
    """
    status: list[str] = []

    def start_response(line: str, headers: Any, exc_info: Any = None) -> Any:
        status.append(line)
        return lambda data: None

    result = app(environ, start_response)
    try:
        for _chunk in result:
            pass
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return status
