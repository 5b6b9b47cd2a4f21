"""Requests for counting the operations layers' instructions with valgrind.

CPU time on a busy machine varies by tens of percent from one second to the
next; the number of instructions a process executes does not.  This module
makes ``N`` requests in process, as :mod:`benchmarks.operations` does, to
one application, so that valgrind can count them::

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        python -m benchmarks.instructions TRACKER_HOME on 0
    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        python -m benchmarks.instructions TRACKER_HOME on 4000

(with ``PYTHONHASHSEED=0``); the difference of the two "Collected" counts
divided by 4000 is the instructions per request.  The applications
(``APP``): ``off`` (an application answering at once, 1000 bytes), ``on``
(the ``make_app`` stack with access log and metrics around it),
``static-off`` / ``static-on`` (a bare ``RequestDispatcher`` / ``make_app``
with access log and metrics, for the requested path), ``stock`` (Roundup's
own ``roundup.cgi.wsgi_handler.RequestDispatcher``, for the requested
path: ``--path /issue --warm-up 5`` against ``static-off`` gives the
instructions of an index page, stock against ours).  The access log goes
to ``/dev/null`` through the handler ``make_app`` installs.  The tracker
home must exist, with ``web`` = ``http://127.0.0.1:8080/``, e.g. built as
:mod:`benchmarks.operations` builds its own:
``benchmarks.seed.build_tracker(home, 10, 1024)`` then
``roundup_wsgi.tracker.set_tracker_web(home, "http://127.0.0.1:8080/")``.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Callable
from typing import Any

from .operations import _call, trivial_app

APPS = ("off", "on", "static-off", "static-on", "stock")


def build(home: str, name: str) -> Callable[..., Any]:
    """The application ``name`` (one of :data:`APPS`) for tracker ``home``."""
    from roundup_wsgi import RequestDispatcher
    from roundup_wsgi.app import find_layer, make_app
    from roundup_wsgi.health import Operations

    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    if name == "off":
        return trivial_app
    if name == "stock":
        from roundup.cgi.wsgi_handler import RequestDispatcher as StockDispatcher

        return StockDispatcher(home)
    if name == "static-off":
        return RequestDispatcher(home)
    app = make_app(home, access_log=True, metrics=True)
    if name == "on":
        find_layer(app, Operations).app = trivial_app
    devnull = open(os.devnull, "w")  # noqa: SIM115 - for the process's life
    for handler in logging.getLogger("roundup_wsgi.access").handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(devnull)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.instructions",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("home", help="tracker home")
    parser.add_argument("app", choices=APPS)
    parser.add_argument("requests", type=int, help="requests after the warm-up")
    parser.add_argument("--path", default="/@@file/style.css", help="request path")
    parser.add_argument("--warm-up", type=int, default=200, help="requests first")
    args = parser.parse_args(argv)
    app = build(args.home, args.app)
    for _ in range(args.warm_up + args.requests):
        if _call(app, args.path) != 200:
            raise SystemExit(f"benchmarks.instructions: {args.path} did not answer 200")


if __name__ == "__main__":
    main()
