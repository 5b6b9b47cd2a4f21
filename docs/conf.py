"""Sphinx configuration of the roundup-wsgi documentation.

Build: ``python -m pip install '.[docs]' && sphinx-build -W -n -b html docs
docs/_build/html`` (warnings are errors, every reference must resolve).
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(DOCS.parent))

import roundup_wsgi  # noqa: E402

project = "roundup-wsgi"
author = "the roundup-wsgi developers"
copyright = "the roundup-wsgi developers"
release = roundup_wsgi.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    # docs/_ext/roundup_docs.py: the options table made from
    # roundup_wsgi/options.py, and the check that every public name has an
    # API entry.
    "roundup_docs",
]

exclude_patterns = ["_build"]
root_doc = "index"
html_theme = "alabaster"
html_title = f"roundup-wsgi {release}"
# Literal blocks hold commands, configuration files and tables of figures.
highlight_language = "none"

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": False}

nitpicky = True
# No intersphinx: CI builds without network, so the inventories of Python,
# WebOb, Werkzeug and Roundup cannot be fetched.  References to their names
# cannot resolve and are ignored here, by the module they belong to; every
# name of roundup_wsgi itself must resolve (only its type variables, which
# have no entry, are listed).
nitpick_ignore = [
    ("py:obj", "roundup_wsgi.wsgi.lru.V"),
    ("py:mod", "json"),
    ("py:mod", "logging"),
]
nitpick_ignore_regex = [
    # Python's standard library, as the annotations and docstrings name it.
    (
        r"py:(class|func|exc|data|meth)",
        r"(collections\.abc|enum|functools|http|io|ipaddress|json|logging|os"
        r"|tempfile|types)\.\w+",
    ),
    # Roundup, WebOb and Werkzeug.
    (r"py:(class|func|exc|meth|data)", r"(roundup|webob|werkzeug)\..+"),
]
