"""Tests of roundup_wsgi.cli.check: the diagnostics of ``roundup-wsgi check``."""

from __future__ import annotations

from pathlib import Path

from helpers.checks import TRACKER_CHECKS, by_check

from roundup_wsgi.cli.check import run_checks

WEB = "http://localhost/"


def test_a_good_tracker_passes(tracker_home: Path) -> None:
    findings = run_checks(tracker_home, url=WEB)
    assert [f.check for f in findings] == [*TRACKER_CHECKS, "tracker web"]
    assert all(f.ok for f in findings), findings
    assert "sqlite database opens (3 users)" in by_check(findings)["backend"].message


def test_missing_home(tmp_path: Path) -> None:
    (finding,) = run_checks(tmp_path / "nope")
    assert finding.ok is False
    assert "does not exist" in finding.message
    assert "roundup-wsgi init" in finding.fix


def test_a_tracker_that_does_not_open_skips_the_checks_that_need_it(
    tracker_home: Path,
) -> None:
    """Only the cluster checks, which read config.ini alone, still run."""
    (tracker_home / "schema.py").write_text("def open(:\n")
    names = [f.check for f in run_checks(tracker_home, url=WEB)]
    assert names == TRACKER_CHECKS[: TRACKER_CHECKS.index("tracker opens") + 1]
    findings = run_checks(tracker_home, url=WEB, cluster=True)
    assert by_check(findings)["tracker opens"].ok is False
    assert findings[-1].check == "tracker web"
    assert "backend" not in by_check(findings)


def test_the_findings_names_stay_importable_from_check() -> None:
    """tests/helpers and deploy tests import them from roundup_wsgi.cli.check."""
    from roundup_wsgi.cli import check, check_cluster, check_permissions, findings

    assert check.Finding is findings.Finding
    assert check.ServingUser is check_permissions.ServingUser
    assert check.cluster_checks is check_cluster.cluster_checks
    assert check.filesystem_type is check_cluster.filesystem_type
