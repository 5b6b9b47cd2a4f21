"""Tests of roundup_wsgi.cli.findings: how ``roundup-wsgi check`` prints
its findings, and its exit status."""

from __future__ import annotations

from pathlib import Path

import pytest

from roundup_wsgi import cli
from roundup_wsgi.cli.findings import Finding, listing, report


def test_report_prints_each_label_and_the_fix(
    capsys: pytest.CaptureFixture[str],
) -> None:
    findings = [
        Finding("a", True, "fine"),
        Finding("b", None, "not compared"),
        Finding("c", None, "risky", "do this", warn=True),
        Finding("d", False, "broken", "fix it"),
        Finding("e", False, "broken too"),
    ]
    assert report(findings) == 1
    assert capsys.readouterr().out == (
        "ok    a: fine\n"
        "skip  b: not compared\n"
        "warn  c: risky\n"
        "      fix: do this\n"
        "FAIL  d: broken\n"
        "      fix: fix it\n"
        "FAIL  e: broken too\n"
        "2 checks failed.\n"
    )
    assert report(findings[:3]) == 0
    assert capsys.readouterr().out.endswith(
        "warn  c: risky\n      fix: do this\nAll checks passed.\n"
    )


def test_listing_counts_what_it_leaves_out() -> None:
    assert listing(["a", "b"]) == "a, b"
    paths = [f"p{n}" for n in range(8)]
    assert listing(paths) == "p0, p1, p2, p3, p4 and 3 more"


def test_check_passes(tracker_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check", str(tracker_home), "--url", "http://localhost"]) == 0
    out = capsys.readouterr().out
    assert out.count("\nok  ") + out.startswith("ok  ") == 9
    assert "ok    template utils: 0 registered by extensions, no name twice" in out
    assert out.rstrip().endswith("All checks passed.")


def test_check_fails_with_the_fix(
    tracker_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "https://bugs.example/tracker/"
    assert cli.main(["check", str(tracker_home), "--url", url]) == 1
    out = capsys.readouterr().out
    assert "FAIL  tracker web: [tracker] web = http://localhost/" in out
    assert f"      fix: set 'web = {url}' in the [tracker] section" in out
    assert out.rstrip().endswith("1 check failed.")


def test_check_missing_home(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check", str(tmp_path / "none")]) == 1
    assert "roundup-wsgi init" in capsys.readouterr().out
