"""The package stays small enough to read: modules and functions have a size limit.

A module over :data:`MAX_MODULE_LINES` lines or a function over
:data:`MAX_FUNCTION_LINES` (its ``def`` line, docstring and body) is a sign
that it holds more than one thing; split it by meaning (issue 21).  Read
from the source with :mod:`ast`, so the check runs without Roundup too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import roundup_wsgi

#: The package under test (the installed one when the tests run from an sdist).
PACKAGE = Path(roundup_wsgi.__file__).resolve().parent
#: The most lines a module may have.
MAX_MODULE_LINES = 400
#: The most lines a function or method may have, from ``def`` to its end.
MAX_FUNCTION_LINES = 60

SOURCES = sorted(PACKAGE.rglob("*.py"))


def _name(path: Path) -> str:
    return str(path.relative_to(PACKAGE.parent))


@pytest.mark.parametrize("path", SOURCES, ids=_name)
def test_module_is_at_most_400_lines(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, (
        f"{_name(path)} has {lines} lines (at most {MAX_MODULE_LINES}): "
        "split it by what it holds"
    )


@pytest.mark.parametrize("path", SOURCES, ids=_name)
def test_functions_are_at_most_60_lines(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    long = [
        f"{node.name} (line {node.lineno}, {size} lines)"
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and (size := (node.end_lineno or node.lineno) - node.lineno + 1)
        > MAX_FUNCTION_LINES
    ]
    assert not long, (
        f"{_name(path)}: functions over {MAX_FUNCTION_LINES} lines: {', '.join(long)}"
    )


def test_the_limits_see_every_module() -> None:
    """The checks above read the package's modules, all three layers."""
    names = {_name(path) for path in SOURCES}
    assert "roundup_wsgi/dispatcher.py" in names
    assert any(name.startswith("roundup_wsgi/wsgi/") for name in names)
    assert any(name.startswith("roundup_wsgi/cli/") for name in names)
