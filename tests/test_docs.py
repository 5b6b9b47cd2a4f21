"""The README as a front door, and the docs' generated parts without Sphinx.

The Sphinx build itself (``sphinx-build -W -n``) runs in ``.ci/run``; these
tests check what can drift without it: the README's size, links and
commands, and the options table and API check of ``docs/_ext``.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.rst"
DOCS = ROOT / "docs"
#: The two commands, as the README and the Getting started page give them
#: (.ci/run checks the second one verbatim).
RUN_COMMAND = (
    "python3 -m venv .venv && . .venv/bin/activate && python -m pip install . "
    "&& roundup-wsgi serve"
)
TEST_COMMAND = (
    "python3 -m venv .venv && . .venv/bin/activate && "
    "python -m pip install '.[test]' && python -m pytest"
)


@pytest.fixture(scope="module")
def roundup_docs() -> ModuleType:
    """``docs/_ext/roundup_docs.py``, imported without Sphinx."""
    spec = importlib.util.spec_from_file_location(
        "roundup_docs", DOCS / "_ext" / "roundup_docs.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("roundup_docs", module)
    spec.loader.exec_module(module)
    return module


def test_readme_is_at_most_200_lines() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) <= 200, len(lines)


@pytest.mark.parametrize("document", [README, DOCS / "getting-started.rst"])
def test_the_two_commands_are_given_verbatim(document: Path) -> None:
    lines = [line.strip() for line in document.read_text().splitlines()]
    assert RUN_COMMAND in lines
    assert TEST_COMMAND in lines


def test_ci_checks_the_readme_test_command() -> None:
    assert f'TEST_COMMAND="{TEST_COMMAND}"' in (ROOT / ".ci" / "run").read_text()


def test_readme_links_point_at_existing_files() -> None:
    targets = re.findall(r"<([^<>]+\.rst)>`_", README.read_text())
    assert len(targets) >= 15, targets
    missing = [target for target in targets if not (ROOT / target).is_file()]
    assert missing == []


def test_readme_uses_no_sphinx_roles() -> None:
    """README.rst is PyPI's long_description: plain reStructuredText only."""
    assert not re.search(r":(doc|ref|class|func|mod|data|meth):`", README.read_text())


def test_every_docs_page_is_linked_from_the_readme_or_a_toctree() -> None:
    linked = set(re.findall(r"<docs/([^<>]+)\.rst>`_", README.read_text()))
    for index in DOCS.rglob("index.rst"):
        folder = index.parent.relative_to(DOCS)
        for entry in re.findall(r"^   (\S+)$", index.read_text(), re.MULTILINE):
            linked.add(str(folder / entry).replace("deployment/../", ""))
    pages = {
        str(page.relative_to(DOCS).with_suffix(""))
        for page in DOCS.rglob("*.rst")
        if "_build" not in page.parts
    }
    assert pages - linked - {"index"} == set()


def test_options_table_has_a_row_per_option(roundup_docs: ModuleType) -> None:
    from roundup_wsgi.options import OPTIONS

    rows = roundup_docs.option_rows()
    assert [row[0] for row in rows] == [f"``{o.name}``" for o in OPTIONS]
    for option, row in zip(OPTIONS, rows, strict=True):
        assert len(row) == len(roundup_docs.COLUMNS)
        assert row[3] == f"``{option.variable}``"
        assert option.help[1:] in row[6]


def test_options_table_writes_types_and_defaults(roundup_docs: ModuleType) -> None:
    rows = {row[0]: row for row in roundup_docs.option_rows()}
    assert rows["``write_mode``"][1] == (
        "one of ``auto``, ``buffer``, ``server``, ``stream``"
    )
    assert rows["``write_mode``"][2] == "``auto``"
    assert rows["``reuse_db``"][1:3] == ("boolean", "``true``")
    assert rows["``max_request_body``"][1] == "integer or none"
    assert rows["``max_request_body``"][2] == "``67108864`` (64 MiB)"
    assert rows["``access_log``"][4] == "(none)"
    assert rows["``reuse_db``"][4] == "``--reuse-db``, ``--no-reuse-db``"
    assert rows["``trusted_proxies``"][4] == "``--trusted-proxy``"
    assert rows["``trusted_proxies``"][5] == "``make_app``"
    assert rows["``reuse_db``"][5] == "``RequestDispatcher``, ``make_app``"
    table = roundup_docs.options_table()
    assert table[0] == ".. list-table::"
    assert sum(line.startswith("   * - ") for line in table) == len(rows) + 1


def test_api_check_names_every_public_name(roundup_docs: ModuleType) -> None:
    import roundup_wsgi

    missing = roundup_docs.missing_entries(set())
    for name in roundup_wsgi.__all__:
        assert f"roundup_wsgi.{name}" in missing
    assert "roundup_wsgi.wsgi.finish.FinishHooks" in missing


def test_api_check_accepts_the_defining_module(roundup_docs: ModuleType) -> None:
    missing = roundup_docs.missing_entries(
        {
            "roundup_wsgi.dispatcher.RequestDispatcher",
            "roundup_wsgi.app.make_app",
            "roundup_wsgi.wsgi.types.WSGIApp",
        }
    )
    assert "roundup_wsgi.RequestDispatcher" not in missing
    assert "roundup_wsgi.make_app" not in missing
    # re-exported from roundup_wsgi.wsgi.types
    assert "roundup_wsgi.wsgi.adapters.WSGIApp" not in missing
    assert "roundup_wsgi.Writer" in missing


def test_references_through_reexports_resolve(roundup_docs: ModuleType) -> None:
    """``roundup_wsgi.options.Settings`` (the old path) resolves to the
    entry of ``roundup_wsgi.settings.Settings``; an unknown name nowhere."""
    documented = {"roundup_wsgi.settings.Settings", "roundup_wsgi.values.convert"}
    resolve = roundup_docs.reexport_target
    assert (
        resolve("roundup_wsgi.options.Settings.from_kwargs", documented)
        == "roundup_wsgi.settings.Settings.from_kwargs"
    )
    assert resolve("roundup_wsgi.options.convert", documented) == (
        "roundup_wsgi.values.convert"
    )
    assert resolve("roundup_wsgi.options.no_such_name", documented) is None
    assert resolve("roundup_wsgi.options.OPTIONS", documented) is None


def test_module_entries_leave_out_excluded_packages(roundup_docs: ModuleType) -> None:
    shown = roundup_docs.modules_shown("roundup_wsgi", ["roundup_wsgi.wsgi"])
    assert "roundup_wsgi.settings" in shown
    assert not [module for module in shown if module.startswith("roundup_wsgi.wsgi")]
    assert roundup_docs.api_entry("roundup_wsgi.settings")[3] == (
        ".. automodule:: roundup_wsgi.settings"
    )
