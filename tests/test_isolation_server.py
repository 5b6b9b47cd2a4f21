"""Two trackers in one waitress process never see each other's utils.

A real waitress (4 threads) serves ``bugs`` and ``support`` through
``roundup_wsgi.app:application`` (``ROUNDUP_TRACKERS``).  Both trackers'
``extensions/`` register ``utils.banner`` and ``utils.motto`` with their own
results, ``bugs`` also ``utils.only_bugs``, and both set an attribute on
their ``Client`` class (``support`` has no interfaces.py: its ``Client`` is
Roundup's own, shared class); many requests from 8 client
threads, interleaved between the trackers, each page shows only its own
tracker's utils.
"""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from helpers import seeded
from helpers.servers import LocalSession, ServerProcess, free_port, waitress_command
from helpers.util_trackers import (
    BANNER_PAGES,
    NEEDS_UTIL_METHODS,
    add_bugs_and_support,
    parse_banner_page,
)

pytestmark = [pytest.mark.slow, NEEDS_UTIL_METHODS]

#: Requests made, half per tracker, in a shuffled order.
REQUESTS = 200
#: Client threads making them at the same time.
CLIENTS = 8


def test_interleaved_requests_see_only_their_own_trackers_utils(
    tmp_path: Path, tracker_template: Path
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    homes = add_bugs_and_support(
        lambda name: seeded.copy_tracker(
            tracker_template, tmp_path / name, f"{base}{name}/"
        )
    )
    env = {
        "ROUNDUP_TRACKERS": ",".join(f"{n}={h}" for n, h in homes.items()),
    }
    order = ["bugs", "support"] * (REQUESTS // 2)
    random.Random(10).shuffle(order)

    def fetch(name: str) -> tuple[str, int, dict[str, str]]:
        with LocalSession() as session:
            r = session.get(f"{base}{name}/issue?@template=banner")
            return name, r.status_code, parse_banner_page(r.text)

    with ServerProcess(
        waitress_command(port),
        port,
        tmp_path / "logs",
        env=env,
        name="waitress-two-trackers",
        ready_path="/bugs/@@file/style.css",
    ) as server:
        # One request per tracker first: Roundup's sqlite session store
        # creates its tables on first use, and two first requests at once
        # race ("table sessions already exists"), in stock Roundup too.
        for name in homes:
            assert fetch(name)[1] == 200
        with ThreadPoolExecutor(CLIENTS) as pool:
            results = list(pool.map(fetch, order))
        assert server.proc is not None
        assert server.proc.poll() is None
        log = "\n".join(
            line
            for line in server.stderr_log.read_text(errors="replace").splitlines()
            if "waitress.queue" not in line
        )[-6000:]
    assert server.stopped
    wrong = [
        (n, code, got)
        for n, code, got in results
        if (code, got) != (200, BANNER_PAGES[n])
    ]
    assert not wrong, (
        f"{len(wrong)} of {len(results)} pages wrong, e.g. {wrong[:3]}\n{log}"
    )
    assert {n for n, _, _ in results} == {"bugs", "support"}
