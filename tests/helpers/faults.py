"""Servers and faults shared by the scenario tests (tests/scenarios/):
a server on a fresh tracker, a directory made unwritable."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from helpers.servers import OUR_APP, ServerProcess, free_port
from helpers.system import require_program

__all__ = ["read_only", "serve"]


@contextmanager
def serve(
    command: Callable[[int, str], list[str]],
    home_for: Callable[[str], Path],
    log_dir: Path,
    name: str,
    env: dict[str, str] | None = None,
) -> Iterator[tuple[ServerProcess, Path]]:
    """Start ``command`` on a tracker made by ``home_for(web)`` (``env``:
    more environment variables, e.g. options)."""
    port = free_port()
    web = f"http://127.0.0.1:{port}/"
    home = home_for(web)
    server = ServerProcess(
        command(port, OUR_APP),
        port,
        log_dir,
        env={"ROUNDUP_TRACKER_HOME": str(home), **(env or {})},
        name=name,
    )
    with server:
        yield server, home


@contextmanager
def read_only(directory: Path) -> Iterator[None]:
    """Make ``directory`` unwritable: ``chattr +i`` as root (root ignores
    permission bits), ``chmod a-w`` otherwise; restored on exit."""
    if os.geteuid() == 0:
        chattr = require_program("chattr", "apt-get install e2fsprogs")
        subprocess.run([chattr, "+i", str(directory)], check=True)
        try:
            yield
        finally:
            subprocess.run([chattr, "-i", str(directory)], check=True)
    else:
        mode = directory.stat().st_mode
        directory.chmod(mode & ~0o222)
        try:
            yield
        finally:
            directory.chmod(mode)
