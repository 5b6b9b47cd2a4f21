"""Tests of roundup_wsgi.wsgi.accesslog: the finish hook (formats, the
logger, records) and LineHandler (bare lines, flushed at once, errors to
handleError).  The lines themselves are tested in test_logformat.py."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest

from roundup_wsgi.wsgi.accesslog import AccessLog, LineHandler, format_line
from roundup_wsgi.wsgi.finish import Finished


def finished_record(**env: Any) -> Finished:
    """A finished ``206`` response to a request with ``env`` added."""
    environ: dict[str, Any] = {}
    setup_testing_defaults(environ)
    environ.update(env)
    return Finished(
        environ,
        status="206 Partial Content",
        bytes_sent=5,
        started=1_700_000_000.0,
        duration=0.0123,
        notes={"trace_id": "T1"},
    )


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="use combined or json"):
        AccessLog(format="xml")  # type: ignore[arg-type]


def test_access_log_hook_logs_at_info(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.access")
    with caplog.at_level(logging.INFO, logger="test.access"):
        AccessLog(logger)(finished_record(REQUEST_METHOD="HEAD"))
    assert caplog.records[0].getMessage().startswith("- - - [")  # no REMOTE_ADDR


def test_line_handler_alone_gets_the_same_lines_without_a_record() -> None:
    stream = io.StringIO()
    handler = LineHandler(stream)
    logger = logging.getLogger("test.access.line")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    seen: list[logging.LogRecord] = []
    hook = AccessLog(logger)
    try:
        hook(finished_record(PATH_INFO="/a%(process)d"))  # written directly
        handler.addFilter(lambda record: seen.append(record) or True)
        hook(finished_record(PATH_INFO="/a%(process)d"))  # through a record
    finally:
        logger.removeHandler(handler)
    first, second = stream.getvalue().splitlines()
    assert first == second == format_line(finished_record(PATH_INFO="/a%(process)d"))
    assert "/a%(process)d " in first
    (record,) = seen
    assert (record.levelno, record.name, record.getMessage()) == (
        logging.INFO,
        "test.access.line",
        first,
    )


def test_line_handler_write_error_goes_to_handle_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Broken(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError("disk full")

    handler = LineHandler(Broken())
    errors: list[logging.LogRecord] = []
    monkeypatch.setattr(handler, "handleError", errors.append)
    handler.write_line("a line", "test.access")
    assert [(r.name, r.getMessage()) for r in errors] == [("test.access", "a line")]


@pytest.mark.parametrize("write_through", [True, False])
def test_line_handler_lines_reach_the_file_at_once(
    tmp_path: Path, write_through: bool
) -> None:
    """Each line is in the file as soon as it is written: a write-through
    stream over an unbuffered file (sys.stderr's kind) is not flushed, a
    buffered one is."""
    path = tmp_path / "access.log"
    raw = open(path, "wb", buffering=0)  # noqa: SIM115 - closed below
    binary = raw if write_through else io.BufferedWriter(raw)
    stream = io.TextIOWrapper(binary, "utf-8", write_through=write_through)
    handler = LineHandler(stream)
    try:
        for number in range(3):
            handler.write_line(f"line {number}")
            assert path.read_text().splitlines()[-1] == f"line {number}"
        assert (handler._unbuffered is stream) == write_through
    finally:
        stream.close()


def test_the_old_import_path_gives_the_same_objects() -> None:
    """The names that moved to logformat still import from accesslog."""
    from roundup_wsgi.wsgi import accesslog, logformat

    assert set(logformat.__all__) <= set(accesslog.__all__)
    for name in logformat.__all__:
        assert getattr(accesslog, name) is getattr(logformat, name), name
