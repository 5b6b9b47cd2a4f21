"""The pytest plugin and comparison behind ``.ci/roundup-suite`` (Roundup's
own live-server suite with our dispatcher), on a small stand-in suite: the
real one takes minutes and runs in ``.ci/roundup-suite`` itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from roundup_suite import compare

REPO = Path(__file__).resolve().parent.parent

#: A suite shaped like Roundup's test/test_liveserver.py: unittest classes
#: that import RequestDispatcher by name and keep ``subtests`` as
#: ``self._subtests``.  OPTIONS_OK says whether the OPTIONS checks pass.
SUITE = """
import unittest

import pytest
from roundup.cgi.wsgi_handler import RequestDispatcher

OPTIONS_OK = {options_ok}


class BaseTestCases(unittest.TestCase):
    @pytest.fixture(autouse=True)
    def inject_fixtures(self, subtests):
        self._subtests = subtests

    def test_which_dispatcher(self):
        print("DISPATCHER", RequestDispatcher.__module__, RequestDispatcher.__name__)

    def test_invalid_http_html_methods(self):
        for method in ("PUT", "OPTIONS", "PATCH"):
            with self._subtests.test(entry=method):
                assert method != "OPTIONS" or OPTIONS_OK

    def test_http_options(self):
        assert OPTIONS_OK

    def test_other(self):
        pass
"""


def run_suite(tmp_path: Path, mode: str, *, options_ok: bool) -> dict[str, str]:
    pytest.importorskip("requests")  # the 'test' extra is installed
    if int(pytest.__version__.split(".")[0]) < 9:
        pytest.importorskip("pytest_subtests")
    suite = tmp_path / mode
    suite.mkdir()
    (suite / "test_suite.py").write_text(SUITE.format(options_ok=options_ok))
    report = suite / "report.json"
    env = dict(
        os.environ, PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.roundup_suite.plugin",
            "-p",
            "no:cacheprovider",
            f"--roundup-wsgi={mode}",
            f"--roundup-wsgi-report={report}",
            "-s",
            "-q",
            "test_suite.py",
        ],
        cwd=suite,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert report.exists(), result.stdout + result.stderr
    outcomes: dict[str, str] = json.loads(report.read_text())["outcomes"]
    outcomes["stdout"] = result.stdout
    return outcomes


def test_ours_swapped_in_and_options_tests_xfail(tmp_path: Path) -> None:
    outcomes = run_suite(tmp_path, "no-write", options_ok=False)
    assert (
        "DISPATCHER tests.roundup_suite.plugin RequestDispatcher[roundup_wsgi"
        in (outcomes["stdout"])
    )
    assert outcomes["test_suite.py::BaseTestCases::test_http_options"] == "xfailed"
    # Only the OPTIONS subtest is expected to fail; PUT and PATCH pass.
    assert (
        outcomes["test_suite.py::BaseTestCases::test_invalid_http_html_methods"]
        == "xfailed"
    )
    assert outcomes["test_suite.py::BaseTestCases::test_other"] == "passed"


def test_expected_failures_are_strict(tmp_path: Path) -> None:
    outcomes = run_suite(tmp_path, "write", options_ok=True)
    assert outcomes["test_suite.py::BaseTestCases::test_http_options"] == "failed"
    assert (
        outcomes["test_suite.py::BaseTestCases::test_invalid_http_html_methods"]
        == "failed"
    )


def test_stock_mode_swaps_nothing_and_marks_nothing(tmp_path: Path) -> None:
    outcomes = run_suite(tmp_path, "stock", options_ok=False)
    assert "DISPATCHER roundup.cgi.wsgi_handler RequestDispatcher" in outcomes["stdout"]
    assert outcomes["test_suite.py::BaseTestCases::test_http_options"] == "failed"


def test_regressions_allow_only_named_xfails() -> None:
    baseline = {
        "t.py::A::test_http_options": "passed",
        "t.py::A::test_a": "passed",
        "t.py::A::test_b": "passed",
        "t.py::A::test_c": "passed",
        "t.py::A::test_d": "failed",
        "t.py::A::test_e": "skipped",
    }
    ours = {
        "t.py::A::test_http_options": "xfailed",
        "t.py::A::test_a": "passed",
        "t.py::A::test_b": "xfailed",  # not a named expected failure
        "t.py::A::test_d": "failed",
        "t.py::A::test_e": "skipped",
    }
    assert compare.regressions(baseline, ours) == [
        "t.py::A::test_b: xfailed",
        "t.py::A::test_c: missing",
    ]
    assert compare.counts(ours) == {
        "passed": 1,
        "failed": 1,
        "error": 0,
        "skipped": 1,
        "xfailed": 2,
    }


def test_compare_exit_status_and_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def write(name: str, mode: str, outcomes: dict[str, str]) -> str:
        path = tmp_path / name
        path.write_text(
            json.dumps({"mode": mode, "write_mode": "buffer", "outcomes": outcomes})
        )
        return str(path)

    base = write("base.json", "stock", {"t::a": "passed", "t::b": "passed"})
    good = write("good.json", "write", {"t::a": "passed", "t::b": "passed"})
    bad = write("bad.json", "no-write", {"t::a": "passed", "t::b": "failed"})
    assert compare.main([base, good]) == 0
    assert compare.main([base, good, bad]) == 1
    out = capsys.readouterr().out
    assert "ours, no-write (write_mode=buffer)" in out
    assert "  t::b: failed" in out
    with pytest.raises(SystemExit) as exit_info:
        compare.main([base, str(tmp_path / "missing.json")])
    assert exit_info.value.code == 2
