"""A database's security answering from a memo
(roundup_wsgi/patches/security.py), on a real tracker database."""

from __future__ import annotations

from typing import Any

import pytest
from roundup.security import Security

from roundup_wsgi.patches import security

pytestmark = pytest.mark.skipif(
    not security.SUPPORTED, reason="Roundup 2.4: the memo is not installed"
)


class Memo:
    """Answers yes to everything; counts what it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[Any, ...]] = []
        self.forgotten = 0

    def has_permission(self, permission: str, userid: str, *args: Any) -> bool:
        self.asked.append((permission, userid, *args))
        return True

    def has_search_permission(self, userid: str, classname: str, property: str) -> Any:
        self.asked.append(("search", userid, classname, property))
        return 1

    def forget(self) -> None:
        self.forgotten += 1


def test_the_memo_answers_until_removed(db: Any) -> None:
    anonymous = db.user.lookup("anonymous")
    assert security.unchanged(db.security)
    assert not db.security.hasPermission("Edit", anonymous, "user")
    memo = Memo()
    security.install(db.security, memo)
    assert security.installed(db.security) is memo
    assert not security.unchanged(db.security)
    assert db.security.hasPermission("Edit", anonymous, "user") is True
    assert db.security.hasSearchPermission(anonymous, "issue", "title") == 1
    assert memo.asked == [
        ("Edit", anonymous, "user"),
        ("search", anonymous, "issue", "title"),
    ]
    security.remove(db.security)
    assert security.installed(db.security) is None
    assert security.unchanged(db.security)
    assert not db.security.hasPermission("Edit", anonymous, "user")


def test_adding_a_role_or_permission_makes_the_memo_forget(db: Any) -> None:
    memo = Memo()
    security.install(db.security, memo)
    db.security.addRole(name="Auditor", description="reads everything")
    permission = db.security.addPermission(name="Audit", klass="issue")
    db.security.addPermissionToRole("Auditor", permission)
    assert memo.forgotten == 3
    assert "auditor" in db.security.role  # Roundup's methods did their work


def test_a_replaced_method_or_a_subclass_is_not_unchanged(
    db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Security, "hasPermission", lambda *args: True)
    assert not security.unchanged(db.security)
    monkeypatch.undo()

    class Own(Security):
        pass

    assert not security.unchanged(object.__new__(Own))
