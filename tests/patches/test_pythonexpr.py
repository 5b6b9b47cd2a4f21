"""Template ``python:`` expressions keep nothing of a request and do not
share their names between evaluations (roundup_wsgi/patches/pythonexpr.py)."""

from __future__ import annotations

import gc
import weakref
from typing import Any

from roundup.cgi.PageTemplates.Expressions import getEngine
from roundup.cgi.PageTemplates.PythonExpr import PythonExpr

from roundup_wsgi import RequestDispatcher
from roundup_wsgi.patches import pythonexpr


class Database:
    """Stands for a request's tracker database."""


def evaluate(expr: PythonExpr, **names: Any) -> Any:
    return expr(getEngine().getContext(names))


def test_the_dispatcher_installs_it(tracker_home: Any) -> None:
    RequestDispatcher(str(tracker_home))
    assert pythonexpr.installed()


def test_an_expression_keeps_no_object_of_its_evaluation() -> None:
    # Before: the compiled function's globals kept the last request's db
    # (and its connections) for the life of the process.
    pythonexpr.install()
    expr = PythonExpr("python", "db is not None", getEngine())
    db = Database()
    assert evaluate(expr, db=db) is True
    gone = weakref.ref(db)
    del db
    gc.collect()
    assert gone() is None


def test_an_evaluation_never_sees_another_ones_names() -> None:
    # Before: the names were bound by updating the function's globals, so
    # an evaluation interleaved with another (two threads; here nested,
    # deterministically) went on with the other one's ``x``.
    pythonexpr.install()
    expr = PythonExpr("python", "hook() or x", getEngine())

    def other() -> None:
        assert evaluate(expr, hook=lambda: None, x="other") == "other"

    assert evaluate(expr, hook=other, x="mine") == "mine"
    # A name bound by an earlier evaluation only is not there any more.
    expr = PythonExpr("python", "x", getEngine())
    assert evaluate(expr, x=1) == 1
    try:
        evaluate(expr)
    except NameError:
        pass
    else:
        raise AssertionError("x of the earlier evaluation was used")


def test_remove_gives_roundups_method_back() -> None:
    pythonexpr.install()
    try:
        pythonexpr.remove()
        assert PythonExpr.__call__ is pythonexpr.ORIGINAL
        assert not pythonexpr.installed()
    finally:
        pythonexpr.install()
    assert pythonexpr.installed()
