"""Compare the outcome files of Roundup's live-server suite runs.

Usage (``.ci/roundup-suite`` runs it)::

    python -m tests.roundup_suite.compare BASELINE.json RUN.json [RUN.json ...]

Each file is a report written by :mod:`tests.roundup_suite.plugin`
(``--roundup-wsgi-report``).  Prints a table of outcome counts per run, then
every test that passed in the baseline (Roundup's own dispatcher) but did not
pass in a run with ours, except the tests the plugin expects to fail
(:data:`tests.roundup_suite.plugin.EXPECTED_FAILURES`, reported ``xfailed``).
Exits 1 if there is any such test, 2 for a missing or malformed file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from .plugin import EXPECTED_FAILURES

#: Columns of the summary table, in order.
OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed")


def load(path: str) -> dict[str, Any]:
    """Read one report.

    :returns: ``{"mode": str, "write_mode": str, "outcomes": {nodeid: outcome}}``.
    :raises SystemExit: (code 2) the file is missing or is not a report.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(data.get("outcomes"), dict):
            raise ValueError("no 'outcomes' object")
    except (OSError, ValueError) as error:
        print(
            f"compare: {path} is not a report of tests/roundup_suite/plugin.py "
            f"({error}); did that pytest run start?",
            file=sys.stderr,
        )
        raise SystemExit(2) from error
    return data


def counts(outcomes: dict[str, str]) -> dict[str, int]:
    """Number of tests per outcome (every outcome of :data:`OUTCOMES`)."""
    result = dict.fromkeys(OUTCOMES, 0)
    for outcome in outcomes.values():
        result[outcome] = result.get(outcome, 0) + 1
    return result


def regressions(baseline: dict[str, str], run: dict[str, str]) -> list[str]:
    """Tests passing in ``baseline`` that do not pass in ``run``.

    A test named in ``EXPECTED_FAILURES`` may be ``xfailed`` instead.

    :returns: lines ``"nodeid: outcome"``, sorted.
    """
    found = []
    for nodeid, outcome in sorted(baseline.items()):
        if outcome != "passed":
            continue
        ours = run.get(nodeid, "missing")
        name = nodeid.rsplit("::", 1)[-1].split("[")[0]
        if ours == "passed" or (ours == "xfailed" and name in EXPECTED_FAILURES):
            continue
        found.append(f"{nodeid}: {ours}")
    return found


def label(report: dict[str, Any]) -> str:
    mode = str(report.get("mode"))
    if mode == "stock":
        return "stock Roundup"
    return f"ours, {mode} (write_mode={report.get('write_mode')})"


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(
            "usage: python -m tests.roundup_suite.compare BASELINE.json RUN.json...",
            file=sys.stderr,
        )
        return 2
    reports = [load(path) for path in argv]
    width = max(len(label(report)) for report in reports)
    print(f"{'run':<{width}}  " + "  ".join(f"{name:>7}" for name in OUTCOMES))
    for report in reports:
        row = counts(report["outcomes"])
        print(
            f"{label(report):<{width}}  "
            + "  ".join(f"{row[name]:>7}" for name in OUTCOMES)
        )
    baseline = reports[0]["outcomes"]
    status = 0
    for report in reports[1:]:
        found = regressions(baseline, report["outcomes"])
        if found:
            status = 1
            print(f"\nPassed with stock Roundup, not with {label(report)}:")
            for line in found:
                print(f"  {line}")
    if status == 0:
        print(
            "\nEvery test that passed with stock Roundup passed with ours "
            "(expected failures: " + ", ".join(sorted(EXPECTED_FAILURES)) + ")."
        )
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
