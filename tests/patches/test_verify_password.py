"""LoginAction.verifyPassword replaced once, only Roundup's own
(roundup_wsgi/patches/verify_password.py)."""

from __future__ import annotations

from typing import Any

import pytest
from roundup.cgi.actions import LoginAction

from roundup_wsgi.patches import verify_password


@pytest.fixture(autouse=True)
def _restored(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the process had (authmemo's, from another test) comes back."""
    monkeypatch.setattr(LoginAction, "verifyPassword", LoginAction.verifyPassword)


def replacement(self: Any, userid: str, givenpw: Any) -> Any:
    return verify_password.ORIGINAL(self, userid, givenpw)


def test_install_replaces_roundups_method_and_remove_gives_it_back() -> None:
    verify_password.remove()
    assert LoginAction.verifyPassword is verify_password.ORIGINAL
    assert not verify_password.installed()
    assert verify_password.install(replacement)
    assert LoginAction.verifyPassword is replacement
    assert verify_password.installed()
    # Installed already: another call changes nothing.
    assert verify_password.install(lambda *args: 1)
    assert LoginAction.verifyPassword is replacement
    verify_password.remove()
    assert LoginAction.verifyPassword is verify_password.ORIGINAL


def test_a_method_replaced_by_someone_else_is_left_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def theirs(self: Any, userid: str, givenpw: Any) -> Any:
        return 0

    monkeypatch.setattr(LoginAction, "verifyPassword", theirs)
    assert not verify_password.install(replacement)
    assert LoginAction.verifyPassword is theirs
