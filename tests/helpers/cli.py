"""What the tests of the ``roundup-wsgi`` command (tests/cli/) read from its
output, and a check of a tracker's admin password."""

from __future__ import annotations

from pathlib import Path

import pytest

__all__ = ["admin_password_verifies", "error_line", "the_error"]


def error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The single ``roundup-wsgi: error:`` line on stderr (asserted)."""
    out, err = capsys.readouterr()
    assert out == ""
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("roundup-wsgi: error: ")
    return lines[0]


def admin_password_verifies(home: Path | str, password: str) -> bool:
    from roundup import instance

    db = instance.open(str(home)).open("admin")
    try:
        return bool(db.user.get(db.user.lookup("admin"), "password") == password)
    finally:
        db.close()


def the_error(capsys: pytest.CaptureFixture[str]) -> str:
    """The last stderr line, asserted to be a ``roundup-wsgi: error:``."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.splitlines()[-1]
    assert last.startswith("roundup-wsgi: error: "), err
    return last
