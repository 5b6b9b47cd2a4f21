"""Fixtures of the ``roundup-wsgi`` command's tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test in ``tmp_path``, where the demo is ``trackers/demo``."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
