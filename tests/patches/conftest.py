"""Fixtures for the patch tests: a real tracker's database."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import roundup.instance


@pytest.fixture
def tracker(tracker_home: Path) -> Any:
    """The seeded sqlite tracker, opened by Roundup (not isolated)."""
    return roundup.instance.open(str(tracker_home))


@pytest.fixture
def db(tracker: Any) -> Iterator[Any]:
    """The tracker's database, opened as ``admin``; closed afterwards."""
    opened = tracker.open("admin")
    yield opened
    with contextlib.suppress(Exception):  # closed by the test already
        opened.close()


class Watcher:
    """A recording :class:`roundup_wsgi.patches.roundup_types.ErrorWatcher`."""

    def __init__(self, mail: bool = True) -> None:
        self.noted: list[BaseException] = []
        self.caught: list[BaseException] = []
        self.mail = mail

    def note(self, error: BaseException) -> None:
        self.noted.append(error)

    def admin_mail(self, error: BaseException) -> bool:
        self.caught.append(error)
        return self.mail


@pytest.fixture
def watcher() -> Watcher:
    return Watcher()
