"""Run Roundup's own live-server suite against roundup-wsgi's dispatcher.

Roundup's sdist ships ``test/test_liveserver.py``: about a hundred tests that
start a ``wsgiref`` server (``test/wsgi_liveserver.py``) in a thread, serve
``validator(RequestDispatcher(tracker_home))`` on a loopback port and talk to
it with ``requests``.  ``RequestDispatcher`` there is
``roundup.cgi.wsgi_handler.RequestDispatcher``, imported by name when the
test module is imported.  This pytest plugin swaps it for
:class:`roundup_wsgi.RequestDispatcher` without touching Roundup's files::

    cd <unpacked roundup sdist>
    PYTHONPATH=<roundup-wsgi checkout> python -m pytest \\
        -p tests.roundup_suite.plugin --roundup-wsgi=write test/test_liveserver.py

``.ci/roundup-suite`` does all of it (download, unpack, three runs, compare).

Modes (``--roundup-wsgi=MODE`` or the environment variable
``ROUNDUP_WSGI_SUITE``; the option wins):

``stock``
    nothing swapped: Roundup's own dispatcher (the baseline run).
``write``
    our dispatcher, under the suite's own ``wsgiref`` server, whose
    ``start_response`` returns the write callable (PEP 3333).
``no-write``
    our dispatcher, given a ``start_response`` that calls the server's and
    returns ``None`` (as granian, bjoern and hypercorn do); the wrapper sits
    between ``wsgiref.validate.validator`` and the dispatcher, so the
    validator still checks everything the server sees.

``--roundup-wsgi-write-mode`` (``ROUNDUP_WSGI_SUITE_WRITE_MODE``) sets our
dispatcher's ``write_mode`` (``buffer``, the default, ``server`` or
``stream``).

In the ``write`` and ``no-write`` modes the tests in :data:`EXPECTED_FAILURES`
are marked ``xfail(strict=True)`` with the reason: they check a documented
difference of roundup-wsgi (OPTIONS outside ``/rest`` answers 501 Not
Implemented, docs/differences.rst; Roundup answers 405 with its own page), so they
must fail, and a pass is reported as an error.

``--roundup-wsgi-poll-interval=SECONDS``
(``ROUNDUP_WSGI_SUITE_POLL_INTERVAL``) makes the suite's server thread check
for shutdown that often instead of every 0.5 s, a wait paid after each test
(``.ci/roundup-suite`` uses 0.05); in every mode, the baseline included.

``--roundup-wsgi-any-port`` (``ROUNDUP_WSGI_SUITE_ANY_PORT=1``): each test
class is served on a free port the system picks, not the first free one of
8080-8100, so that two runs on one machine do not collide.

``--roundup-wsgi-report=FILE`` (``ROUNDUP_WSGI_SUITE_REPORT``) writes one
JSON object ``{"mode": str, "outcomes": {nodeid: outcome}}`` where outcome is
one of ``passed``, ``failed``, ``skipped``, ``xfailed``, ``error``; a test
fails if any of its phases or subtests failed.  ``.ci/roundup-suite``
compares these files between runs.
"""

from __future__ import annotations

import functools
import importlib.abc
import json
import os
import socket
import sys
from collections.abc import Callable
from typing import Any

import pytest

MODES = ("stock", "write", "no-write")

#: Test function name -> (subtest, reason): the tests that fail with
#: roundup-wsgi by design.  ``subtest`` is ``None`` for the whole test, else
#: the keyword arguments of the one ``subtests.test(...)`` block expected to
#: fail (the test's other subtests must pass).
EXPECTED_FAILURES: dict[str, tuple[dict[str, Any] | None, str]] = {
    "test_http_options": (
        None,
        "roundup-wsgi answers OPTIONS outside /rest with 501 Not Implemented "
        "(documented difference); Roundup answers 405",
    ),
    "test_invalid_http_html_methods": (
        {"entry": "OPTIONS"},
        "roundup-wsgi answers OPTIONS outside /rest with 501 Not Implemented "
        "(documented difference); Roundup answers 405 with its own page",
    ),
}

#: Outcome ranks: the worst outcome of a test's reports is its outcome.
_RANK = {"passed": 0, "skipped": 1, "xfailed": 2, "failed": 3, "error": 4}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("roundup-wsgi", "Roundup's suite with roundup-wsgi")
    group.addoption(
        "--roundup-wsgi",
        choices=MODES,
        default=None,
        help="stock | write | no-write (default: $ROUNDUP_WSGI_SUITE or write)",
    )
    group.addoption(
        "--roundup-wsgi-write-mode",
        default=None,
        help="our dispatcher's write_mode (default: "
        "$ROUNDUP_WSGI_SUITE_WRITE_MODE or buffer)",
    )
    group.addoption(
        "--roundup-wsgi-poll-interval",
        default=None,
        help="seconds the suite's wsgiref server thread waits between checks "
        "for shutdown (default: $ROUNDUP_WSGI_SUITE_POLL_INTERVAL, else the "
        "suite's own 0.5)",
    )
    group.addoption(
        "--roundup-wsgi-any-port",
        action="store_true",
        default=None,
        help="serve each test class on a free port the system picks instead "
        "of the first free one of 8080-8100 (default: "
        "$ROUNDUP_WSGI_SUITE_ANY_PORT=1)",
    )
    group.addoption(
        "--roundup-wsgi-report",
        default=None,
        help="write test outcomes as JSON to this file "
        "(default: $ROUNDUP_WSGI_SUITE_REPORT)",
    )


def _setting(config: pytest.Config, option: str, env: str, default: str) -> str:
    value = config.getoption(option)
    if value is None:
        value = os.environ.get(env) or default
    return str(value)


def pytest_configure(config: pytest.Config) -> None:
    mode = _setting(config, "roundup_wsgi", "ROUNDUP_WSGI_SUITE", "write")
    if mode not in MODES:
        raise pytest.UsageError(
            f"mode {mode!r} (--roundup-wsgi, ROUNDUP_WSGI_SUITE) is not one of: "
            + ", ".join(MODES)
        )
    write_mode = _setting(
        config,
        "roundup_wsgi_write_mode",
        "ROUNDUP_WSGI_SUITE_WRITE_MODE",
        "buffer",
    )
    report = _setting(config, "roundup_wsgi_report", "ROUNDUP_WSGI_SUITE_REPORT", "")
    state = _State(mode, write_mode, report)
    poll = _setting(
        config, "roundup_wsgi_poll_interval", "ROUNDUP_WSGI_SUITE_POLL_INTERVAL", ""
    )
    if poll:
        try:
            state.poll_interval = float(poll)
        except ValueError:
            raise pytest.UsageError(
                f"--roundup-wsgi-poll-interval={poll!r} is not a number of "
                "seconds (e.g. 0.05)"
            ) from None
    any_port = config.getoption("roundup_wsgi_any_port")
    if any_port or (
        any_port is None and os.environ.get("ROUNDUP_WSGI_SUITE_ANY_PORT") == "1"
    ):
        sys.meta_path.insert(0, _LiveServerPatcher())
    config.stash[_KEY] = state
    if mode != "stock":
        import roundup.cgi.wsgi_handler as handler

        from roundup_wsgi.dispatcher import WRITE_MODES

        if write_mode not in WRITE_MODES:
            raise pytest.UsageError(
                f"write mode {write_mode!r} (--roundup-wsgi-write-mode, "
                "ROUNDUP_WSGI_SUITE_WRITE_MODE) is not one of: "
                + ", ".join(WRITE_MODES)
            )

        state.stock_class = handler.RequestDispatcher
        state.our_class = make_dispatcher_class(mode, write_mode)
        # The suite imports the name when its module is imported (after
        # this hook): patching the module it comes from is enough; the
        # collection hook below checks and patches already-imported ones.
        handler.RequestDispatcher = state.our_class


class _State:
    def __init__(self, mode: str, write_mode: str, report: str) -> None:
        self.mode = mode
        self.write_mode = write_mode
        self.report = report
        self.stock_class: Any = None
        self.our_class: Any = None
        self.outcomes: dict[str, str] = {}
        #: kwargs of the subtest running now (``_SubtestsProxy``), or None.
        self.current_subtest: dict[str, Any] | None = None
        #: serve_forever's poll_interval for the suite's server (seconds).
        self.poll_interval: float | None = None


_KEY = pytest.StashKey[_State]()


def make_dispatcher_class(mode: str, write_mode: str) -> type:
    """Return the class put in place of Roundup's ``RequestDispatcher``.

    :param mode: ``"write"`` or ``"no-write"`` (see the module docstring).
    :param write_mode: our dispatcher's ``write_mode``.
    :returns: a subclass of :class:`roundup_wsgi.RequestDispatcher` taking
        Roundup's constructor arguments (``home, debug, timing, lang,
        feature_flags``).
    """
    from roundup_wsgi import RequestDispatcher

    class SuiteDispatcher(RequestDispatcher):  # type: ignore[misc]
        def __init__(self, home: str, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("write_mode", write_mode)
            super().__init__(home, *args, **kwargs)

        if mode == "no-write":

            def __call__(
                self, environ: dict[str, Any], start_response: Callable[..., Any]
            ) -> Any:
                def start_response_without_write(*args: Any) -> None:
                    start_response(*args)

                return super().__call__(environ, start_response_without_write)

    SuiteDispatcher.__name__ = SuiteDispatcher.__qualname__ = (
        f"RequestDispatcher[roundup_wsgi, {mode}, write_mode={write_mode}]"
    )
    return SuiteDispatcher


def pytest_report_header(config: pytest.Config) -> list[str]:
    state = config.stash[_KEY]
    import roundup
    import roundup.cgi.wsgi_handler as handler

    lines = [f"roundup {roundup.__version__} from {os.path.dirname(roundup.__file__)}"]
    if state.mode == "stock":
        lines.append("dispatcher: Roundup's own (stock)")
    else:
        import roundup_wsgi

        lines.append(
            f"dispatcher: roundup_wsgi {roundup_wsgi.__version__} from "
            f"{os.path.dirname(roundup_wsgi.__file__)}; mode {state.mode}, "
            f"write_mode {state.write_mode}; class {handler.RequestDispatcher}"
        )
    return lines


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    state = config.stash[_KEY]
    if state.poll_interval is not None:
        _set_poll_interval(state.poll_interval)
    if state.mode == "stock":
        return
    for module in list(sys.modules.values()):
        if getattr(module, "RequestDispatcher", None) is state.stock_class and (
            getattr(module, "__name__", "").startswith("test")
        ):
            module.RequestDispatcher = state.our_class
    for item in items:
        expected = EXPECTED_FAILURES.get(_test_name(item))
        if expected is not None and expected[0] is None:
            item.add_marker(pytest.mark.xfail(strict=True, reason=expected[1]))


def _free_port(cls: Any, start: int = 0, end: int = 0) -> int:
    """Stands in for ``LiveServerTestCase.probe_ports``: a port of 127.0.0.1
    that is free now, picked by the system (``start`` and ``end`` unused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _LiveServerPatcher(importlib.abc.MetaPathFinder):
    """Replace ``probe_ports`` of ``test/wsgi_liveserver.py`` as soon as that
    module is imported, before ``test_liveserver.py`` calls it in its class
    bodies.

    The suite takes the first free port of 8080-8100 when its module is
    imported and then binds it once per test: two runs on one machine (two
    CI jobs, or a developer's run beside CI) can pick the same port, and
    the later one fails with "Ports 8080-8080 are all already in use".  A
    port the system picks from its ephemeral range avoids that; the suite
    builds its URLs and ``[tracker] web`` from the port it is given.
    """

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if not fullname.endswith("wsgi_liveserver"):
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _PatchingLoader(spec.loader)
                return spec
        return None


class _PatchingLoader(importlib.abc.Loader):
    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def __getattr__(self, name: str) -> Any:  # get_source, get_filename...
        return getattr(self._loader, name)

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self._loader.exec_module(module)
        case = getattr(module, "LiveServerTestCase", None)
        if case is not None and hasattr(case, "probe_ports"):
            case.probe_ports = classmethod(_free_port)


def _set_poll_interval(seconds: float) -> None:
    """Make the suite's server threads check for shutdown every ``seconds``.

    ``test/wsgi_liveserver.py`` starts ``wsgiref``'s server per test with
    ``serve_forever()`` (``poll_interval`` 0.5 s) and stops it with
    ``shutdown()``, which waits for the next poll: about half a second per
    test that answers nothing.  Its ``make_server`` is wrapped so the
    server's ``serve_forever`` polls more often; requests and answers are
    unchanged.
    """
    for module in list(sys.modules.values()):
        make_server = getattr(module, "make_server", None)
        if not (
            getattr(module, "__name__", "").endswith("wsgi_liveserver")
            and callable(make_server)
            and hasattr(module, "LiveServerTestCase")
        ) or getattr(make_server, "_roundup_wsgi_poll", False):
            continue

        def polling_make_server(
            *args: Any, _make: Any = make_server, **kwargs: Any
        ) -> Any:
            server = _make(*args, **kwargs)
            server.serve_forever = functools.partial(
                server.serve_forever, poll_interval=seconds
            )
            return server

        polling_make_server._roundup_wsgi_poll = True  # type: ignore[attr-defined]
        module.make_server = polling_make_server


def _test_name(item: pytest.Item) -> str:
    return getattr(item, "originalname", None) or item.name.split("[")[0]


def _expected_subtest(item: pytest.Item) -> tuple[dict[str, Any], str] | None:
    """The (subtest kwargs, reason) expected to fail in ``item``, if any."""
    state = item.config.stash[_KEY]
    if state.mode == "stock":
        return None
    expected = EXPECTED_FAILURES.get(_test_name(item))
    if expected is None or expected[0] is None:
        return None
    return expected[0], expected[1]


class _SubtestsProxy:
    """Stands in for the suite's ``subtests`` fixture value (its tests keep it
    as ``self._subtests``) and records which subtest is running, so that
    :func:`pytest_runtest_makereport` can mark exactly that one xfail."""

    def __init__(self, subtests: Any, state: _State) -> None:
        self._subtests = subtests
        self._state = state

    def test(self, msg: str | None = None, **kwargs: Any) -> Any:
        return _RecordingContext(
            self._subtests.test(msg, **kwargs), kwargs, self._state
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._subtests, name)


class _RecordingContext:
    def __init__(self, context: Any, kwargs: dict[str, Any], state: _State) -> None:
        self._context = context
        self._kwargs = kwargs
        self._state = state

    def __enter__(self) -> Any:
        self._state.current_subtest = self._kwargs
        return self._context.__enter__()

    def __exit__(self, *exc_info: Any) -> Any:
        try:
            return self._context.__exit__(*exc_info)
        finally:
            self._state.current_subtest = None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    if _expected_subtest(item) is not None:
        instance = getattr(item, "instance", None)
        subtests = getattr(instance, "_subtests", None)
        if subtests is None:
            raise RuntimeError(
                f"{item.nodeid}: the suite no longer keeps its subtests fixture "
                "as self._subtests; update EXPECTED_FAILURES in "
                "tests/roundup_suite/plugin.py"
            )
        instance._subtests = _SubtestsProxy(subtests, item.config.stash[_KEY])
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report: pytest.TestReport = yield
    expected = _expected_subtest(item)
    if expected is None or call.when != "call":
        return report
    kwargs, reason = expected
    if item.config.stash[_KEY].current_subtest != kwargs:
        return report
    # As pytest's skipping plugin reports xfail(strict=True).
    if report.failed:
        report.outcome = "skipped"
        report.wasxfail = reason
    elif report.passed:
        report.outcome = "failed"
        report.longrepr = f"[XPASS(strict)] {reason}"
    return report


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # Subtest reports (pytest >= 9, or pytest-subtests) carry the test's
    # nodeid too: the worst outcome over all reports of a test is its outcome.
    state = _STATE_FOR_REPORTS[0] if _STATE_FOR_REPORTS else None
    if state is None:
        return
    if hasattr(report, "wasxfail"):
        outcome = "failed" if report.outcome == "failed" else "xfailed"
    elif report.outcome == "failed":
        outcome = "failed" if report.when == "call" else "error"
    elif report.outcome == "skipped":
        outcome = "skipped"
    elif report.when == "call":
        outcome = "passed"
    else:
        return
    old = state.outcomes.get(report.nodeid)
    if old is None or _RANK[outcome] > _RANK[old]:
        state.outcomes[report.nodeid] = outcome


_STATE_FOR_REPORTS: list[_State] = []


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    _STATE_FOR_REPORTS[:] = [session.config.stash[_KEY]]


def pytest_sessionfinish(session: pytest.Session) -> None:
    state = session.config.stash[_KEY]
    if state.report:
        with open(state.report, "w", encoding="utf-8") as file:
            json.dump(
                {
                    "mode": state.mode,
                    "write_mode": state.write_mode,
                    "outcomes": state.outcomes,
                },
                file,
                indent=1,
                sort_keys=True,
            )
