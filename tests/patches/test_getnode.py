"""PostgreSQL's getnode without a savepoint for a cached node
(roundup_wsgi/patches/getnode.py).  Installed on a PostgreSQL database in
tests/test_nodecache_pg.py (pages byte for byte); here: where it is not."""

from __future__ import annotations

from typing import Any

from roundup_wsgi.patches import getnode
from roundup_wsgi.patches.targets import find


def test_it_applies_where_roundup_has_a_postgresql_getnode() -> None:
    own = find("roundup.backends.back_postgresql:Database.getnode")
    assert getnode.applies() is (own is not None)


def test_an_sqlite_database_keeps_its_getnode(db: Any) -> None:
    assert not getnode.install(db)
    assert "getnode" not in vars(db)
    getnode.remove(db)
    assert db.getnode("user", "1")["username"] == "admin"
