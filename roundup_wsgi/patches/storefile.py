"""A database's ``storefile`` that makes the file's directory first.

Wraps ``roundup.backends.blobfiles.FileStorage.storefile`` on one database
instance (per request, installed by :mod:`.database_errors`).  Roundup 2.4
to the 2.7 snapshot run ``if not os.path.exists(directory):
os.makedirs(directory)``; each directory holds a thousand files
(``files/msg/0``, ``files/msg/1``...), so when two workers store the first
file of a directory at once (PostgreSQL and MySQL let both transactions
run), the slower ``makedirs`` raises ``FileExistsError``: a 500 that loses
the user's new issue.  Making the directory with ``exist_ok=True`` first,
under the name Roundup's own ``filename(..., create=1)`` gives, leaves
Roundup's check true.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from .targets import Target

__all__ = ["TARGETS", "making_its_directory"]

# Roundup 2.4 and 2.5 name ``property_`` ``property``: passed by position.
TARGETS = (
    Target(
        "roundup.backends.blobfiles:FileStorage.storefile",
        "(self, classname, nodeid, property_, content)",
        ("(self, classname, nodeid, property, content)",),
    ),
    Target(
        "roundup.backends.blobfiles:FileStorage.filename",
        "(self, classname, nodeid, property_=None, create=0)",
        ("(self, classname, nodeid, property=None, create=0)",),
    ),
)


def making_its_directory(
    storefile: Callable[[str, str, str | None, bytes], Any],
    filename: Callable[..., str],
) -> Callable[[str, str, str | None, bytes], Any]:
    """``storefile`` that first makes the file's directory.

    :param storefile: the database's ``storefile(classname, nodeid,
        property, content)``; content is bytes.
    :param filename: the database's ``filename(classname, nodeid,
        property, create)``, which gives the path the file is stored under.
    :returns: a callable with ``storefile``'s signature and result.
    :raises OSError: the directory cannot be made (e.g. a read-only
        ``db``), as Roundup's own ``makedirs`` would raise.
    """

    def storefile_in_its_directory(
        classname: str, nodeid: str, property_: str | None, content: bytes
    ) -> Any:
        name = filename(classname, nodeid, property_, create=1)
        os.makedirs(os.path.dirname(name), exist_ok=True)
        return storefile(classname, nodeid, property_, content)

    return storefile_in_its_directory
