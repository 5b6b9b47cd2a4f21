"""Tests of roundup_wsgi.cli.check_config: config.ini reads, the options
Roundup needs are set, and ``[tracker] web`` is where the tracker is served."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.checks import by_check

from roundup_wsgi.cli.check import run_checks
from roundup_wsgi.cli.check_config import read_config


def test_without_url_the_web_setting_is_not_compared(tracker_home: Path) -> None:
    web = by_check(run_checks(tracker_home))["tracker web"]
    assert web.ok is None
    assert "--url" in web.message


@pytest.mark.parametrize(
    "url", ["https://localhost/", "http://localhost:8080/", "http://localhost/bugs/"]
)
def test_web_must_match_the_url(tracker_home: Path, url: str) -> None:
    web = by_check(run_checks(tracker_home, url=url))["tracker web"]
    assert web.ok is False
    assert f"set 'web = {url}' in the [tracker] section" in web.fix


def test_broken_config(tracker_home: Path) -> None:
    config = tracker_home / "config.ini"
    config.write_text(config.read_text() + "\n[tracker\nweb = x\n")
    findings = run_checks(tracker_home)
    assert findings[-1].check == "config.ini"
    assert findings[-1].ok is False
    assert "config.ini" in findings[-1].fix


def test_read_config_of_a_broken_file(tracker_home: Path) -> None:
    config = tracker_home / "config.ini"
    config.write_text(config.read_text() + "\nnot ini syntax\n")
    read, backend, (found,) = read_config(str(tracker_home))
    assert (read, backend, found.check, found.ok) == (None, "", "config.ini", False)
    assert found.message.startswith(f"{config} cannot be read: ")


def test_an_unset_required_option_fails(tracker_home: Path) -> None:
    config = tracker_home / "config.ini"
    text = config.read_text()
    config.write_text(text.replace("\nweb = http://localhost/", "\n"))
    _, backend, (read, required) = read_config(str(tracker_home))
    assert (backend, read.ok, read.message) == ("sqlite", True, "read; backend sqlite")
    assert required.ok is False
    assert required.message.startswith("[tracker] web is not set: Roundup answers")
    assert required.fix.startswith(f"set it in {config} (e.g. 'web = ")
