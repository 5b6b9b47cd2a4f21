"""storefile makes its directory first (roundup_wsgi/patches/storefile.py);
the race itself is in tests/test_failures.py."""

from __future__ import annotations

import os
from typing import Any

from roundup_wsgi.patches import storefile


def test_a_file_in_a_new_or_an_existing_directory_is_stored(db: Any) -> None:
    calls: list[tuple[Any, ...]] = []
    original = db.storefile

    def recording(*args: Any) -> Any:
        calls.append(args)
        # The directory is there before Roundup's own check runs.
        assert os.path.isdir(os.path.dirname(db.filename(*args[:3], create=1)))
        return original(*args)

    store = storefile.making_its_directory(recording, db.filename)
    store("msg", "7000", None, b"in files/msg/7")
    store("msg", "7001", None, b"beside it")
    assert calls == [
        ("msg", "7000", None, b"in files/msg/7"),
        ("msg", "7001", None, b"beside it"),
    ]
    # Stored as Roundup does until the commit: beside its name, ".tmp".
    name = db.filename("msg", "7000", None, create=1)
    assert name.endswith(os.path.join("files", "msg", "7", "msg7000"))
    with open(name + ".tmp", "rb") as stored:
        assert stored.read() == b"in files/msg/7"
