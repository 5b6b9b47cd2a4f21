"""The package's layers: each imports only those below it.

``roundup_wsgi.wsgi`` (Roundup-free WSGI tools) < the Roundup glue at the top
of ``roundup_wsgi`` < ``roundup_wsgi.cli`` (the command).  Read from the
source with :mod:`ast`, so a lazy import inside a function counts too.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

import roundup_wsgi

#: The package under test (the installed one when the tests run from an sdist).
PACKAGE = Path(roundup_wsgi.__file__).resolve().parent

#: Modules kept at their old paths for existing code (re-exports of wsgi/).
OLD_PATHS = {"adapters", "proxy"}


def layer(module: str) -> int:
    """0: roundup_wsgi.wsgi, 1: the glue, 2: roundup_wsgi.cli."""
    parts = module.split(".")
    if len(parts) > 1 and parts[1] == "wsgi":
        return 0
    if len(parts) > 1 and parts[1] == "cli":
        return 2
    return 1


def imports_of(path: Path, module: str) -> set[str]:
    """The ``roundup_wsgi`` and ``roundup`` modules ``path`` imports."""
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            found.add(name)
            found.update(f"{name}.{alias.name}" for alias in node.names)
    return {n for n in found if n.split(".")[0] in ("roundup", "roundup_wsgi")}


def modules() -> list[tuple[str, Path]]:
    """Every module of the package, ``(dotted name, path)``."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(relative.parts)
        if parts[-1] == "__init__":
            parts.pop()
        found.append((".".join(parts), path))
    return found


@pytest.mark.parametrize(("module", "path"), modules(), ids=lambda x: str(x))
def test_no_module_imports_a_layer_above(module: str, path: Path) -> None:
    if module in ("roundup_wsgi", "roundup_wsgi.__main__") or (
        module.split(".")[-1] in OLD_PATHS and module.count(".") == 1
    ):
        return  # the package's entry points and old paths may name any layer
    for name in imports_of(path, module):
        if name.split(".")[0] == "roundup":
            assert layer(module) > 0, f"{module} imports Roundup ({name})"
            continue
        if name in ("roundup_wsgi", "roundup_wsgi.__version__"):
            continue
        assert layer(name) <= layer(module), f"{module} imports {name} from above"


def test_wsgi_layer_loads_without_roundup() -> None:
    """Importing every module of roundup_wsgi.wsgi loads no Roundup module."""
    code = (
        "import sys, pkgutil, importlib, roundup_wsgi.wsgi as w\n"
        "for m in pkgutil.iter_modules(w.__path__):\n"
        "    importlib.import_module('roundup_wsgi.wsgi.' + m.name)\n"
        "bad = sorted(m for m in sys.modules if m == 'roundup' or "
        "m.startswith('roundup.') or (m.startswith('roundup_wsgi.') and "
        "not m.startswith('roundup_wsgi.wsgi')))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_package_has_all_three_layers() -> None:
    names = {module for module, _ in modules()}
    assert {"roundup_wsgi.wsgi.adapters", "roundup_wsgi.dispatcher"} <= names
    assert "roundup_wsgi.cli.command" in names


#: Words the generic layer's own texts (messages, pages) must not use:
#: Roundup (its package name roundup_wsgi aside), trackers, its REST path.
ROUNDUP_WORDS = re.compile(r"\broundup\b(?![_-]wsgi)|tracker|/rest\b", re.IGNORECASE)


def texts_of(path: Path) -> list[str]:
    """The string constants of a module that are not docstrings."""
    tree = ast.parse(path.read_text(), str(path))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(
            node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef
        )
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


@pytest.mark.parametrize(
    ("module", "path"),
    [(m, p) for m, p in modules() if layer(m) == 0],
    ids=lambda x: str(x),
)
def test_wsgi_layer_texts_name_no_roundup(module: str, path: Path) -> None:
    """Page texts and messages of roundup_wsgi.wsgi are generic: the glue
    passes Roundup's (e.g. ``Mount(title="Roundup trackers index")``);
    the deprecated old name TrackerMount excepted."""
    found = [
        text
        for text in texts_of(path)
        if ROUNDUP_WORDS.search(text.replace("TrackerMount", ""))
    ]
    assert not found, f"{module} speaks of Roundup: {found}"


@pytest.mark.parametrize(
    "package",
    ["roundup_wsgi", "roundup_wsgi.wsgi", "roundup_wsgi.cli", "roundup_wsgi.patches"],
)
def test_package_maps_name_every_module(package: str) -> None:
    """Each package's docstring names each of its modules (``:mod:`.name```)."""
    init = PACKAGE.parent.joinpath(*package.split("."), "__init__.py")
    doc = ast.get_docstring(ast.parse(init.read_text())) or ""  # no import:
    # roundup_wsgi.cli imports Roundup, and this runs without it too
    depth = package.count(".") + 1
    names = {
        module.rpartition(".")[2]
        for module, path in modules()
        if module.count(".") == depth
        and module.startswith(package + ".")
        and path.name != "__init__.py"
    }
    missing = sorted(n for n in names if f":mod:`.{n}`" not in doc)
    assert not missing, f"{package}'s docstring leaves out {missing}"


#: Modules with no behaviour of their own to test (type aliases only).
NO_TESTS = {"roundup_wsgi.wsgi.types"}
#: The tests folder (also in the sdist).
TESTS = Path(__file__).resolve().parent


@pytest.mark.parametrize("package", ["wsgi", "cli", "patches"])
def test_tests_mirror_the_package(package: str) -> None:
    """tests/<package>/ holds test_<module>.py (or test_<module>_<aspect>.py)
    for each module of roundup_wsgi/<package>/, and no other test module."""
    names = {
        module.rpartition(".")[2]
        for module, _ in modules()
        if module.startswith(f"roundup_wsgi.{package}.")
    }
    tests = {path.stem for path in (TESTS / package).glob("test_*.py")}
    missing = sorted(
        name
        for name in names
        if f"test_{name}" not in tests
        and f"roundup_wsgi.{package}.{name}" not in NO_TESTS
    )
    stray = sorted(
        test
        for test in tests
        if not any(test == f"test_{n}" or test.startswith(f"test_{n}_") for n in names)
    )
    assert not missing, f"tests/{package}/ has no test module for {missing}"
    assert not stray, (
        f"tests/{package}/{stray} name no module of roundup_wsgi.{package}"
    )
