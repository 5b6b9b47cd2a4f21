"""Tests of roundup_wsgi.cli.check_permissions: the serving user reads the
tracker home and writes its db directory."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest
from helpers.checks import by_check

from roundup_wsgi.cli.check import run_checks
from roundup_wsgi.cli.check_permissions import ServingUser


@pytest.fixture
def nobody() -> str:
    try:
        return pwd.getpwnam("nobody").pw_name
    except KeyError:
        pytest.skip("no user 'nobody' on this machine")


def test_serving_user_must_write_the_db_directory(
    tracker_home: Path, nobody: str
) -> None:
    os.chmod(tracker_home / "db", 0o755)
    findings = by_check(run_checks(tracker_home, user=nobody))
    assert findings["readable"].ok is True
    writable = findings["db writable"]
    assert writable.ok is False
    assert f"user {nobody} cannot write {tracker_home / 'db'}" in writable.message
    assert f"chown -R {nobody} {tracker_home / 'db'}" in writable.fix


def test_serving_user_must_read_the_home(tracker_home: Path, nobody: str) -> None:
    os.chmod(tracker_home, 0o700)
    readable = by_check(run_checks(tracker_home, user=nobody))["readable"]
    assert readable.ok is False
    assert str(tracker_home) in readable.message
    assert "chmod -R o+rX" in readable.fix


def test_unknown_user(tracker_home: Path) -> None:
    finding = by_check(run_checks(tracker_home, user="no-such-user-x"))
    assert finding["serving user"].ok is False


def test_mode_bits(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("")
    os.chmod(path, 0o640)
    owner = ServingUser("o", os.stat(path).st_uid + 1, frozenset({12345}))
    assert not owner.may(str(path), os.R_OK)
    group = ServingUser("g", owner.uid, frozenset({os.stat(path).st_gid}))
    assert group.may(str(path), os.R_OK)
    assert not group.may(str(path), os.W_OK)
