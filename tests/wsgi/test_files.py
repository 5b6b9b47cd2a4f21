"""Tests of roundup_wsgi.wsgi.files: file bodies without reading files whole.

Every body is checked three ways: the bytes (against slicing the file), the
largest block held (never more than the block size), and that the file is
closed by ``close()`` whatever the server did before.
"""

from __future__ import annotations

import os
from pathlib import Path
from wsgiref.util import FileWrapper

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roundup_wsgi.wsgi.files import (
    BLOCK_SIZE,
    BoundedReads,
    FileChunks,
    FileRange,
    open_file_body,
)

DATA = bytes(range(256)) * 1024  # 256 KiB: every offset shows in the bytes


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("files") / "data.bin"
    path.write_bytes(DATA)
    return path


class RecordingWrapper:
    """A ``wsgi.file_wrapper`` (wsgiref's) that remembers what it wrapped."""

    def __init__(self) -> None:
        self.wrapped: list[object] = []

    def __call__(self, filelike: object, block_size: int = 8192) -> FileWrapper:
        self.wrapped.append(filelike)
        return FileWrapper(filelike, block_size)


def drain(body: object) -> tuple[bytes, int]:
    """All bytes of an app_iter and its largest chunk; then close() it."""
    chunks = list(body)  # type: ignore[call-overload]
    close = getattr(body, "close", None)
    if close is not None:
        close()
    return b"".join(chunks), max((len(c) for c in chunks), default=0)


@settings(max_examples=60, deadline=None)
@given(
    offset=st.integers(min_value=0, max_value=len(DATA) + 10),
    length=st.integers(min_value=0, max_value=len(DATA) + 10),
    wrapped=st.booleans(),
)
def test_open_file_body_sends_exactly_the_range(
    data_file: Path, offset: int, length: int, wrapped: bool
) -> None:
    path = data_file
    environ = {"wsgi.file_wrapper": RecordingWrapper()} if wrapped else {}
    body, largest = drain(open_file_body(environ, path, offset, length))
    start = min(offset, len(DATA))
    assert body == DATA[start : start + length]
    assert largest <= BLOCK_SIZE


def test_a_small_body_is_one_chunk_and_the_file_is_closed(
    data_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[object] = []
    real_open = open

    def tracking_open(*args: object, **kwargs: object) -> object:
        file = real_open(*args, **kwargs)  # type: ignore[call-overload]
        opened.append(file)
        return file

    monkeypatch.setattr("builtins.open", tracking_open)
    wrapper = RecordingWrapper()
    body = open_file_body({"wsgi.file_wrapper": wrapper}, data_file, 5, 100)
    assert body == [DATA[5:105]]
    assert wrapper.wrapped == []  # no file_wrapper round trip for one block
    assert all(file.closed for file in opened)  # type: ignore[attr-defined]


def test_to_the_end_of_the_file_the_wrapper_gets_the_file_descriptor(
    data_file: Path,
) -> None:
    """Servers find ``fileno()`` for sendfile(2), yet reads stay bounded."""
    wrapper = RecordingWrapper()
    body = open_file_body({"wsgi.file_wrapper": wrapper}, data_file, 1000, len(DATA))
    (filelike,) = wrapper.wrapped
    assert isinstance(filelike, BoundedReads)
    assert filelike.fileno() > 0
    assert len(filelike.read(10 * BLOCK_SIZE)) == BLOCK_SIZE
    body.close()  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="closed"):
        filelike.read(1)


def test_a_range_before_the_end_is_a_file_range_without_fileno(
    data_file: Path,
) -> None:
    wrapper = RecordingWrapper()
    body = open_file_body({"wsgi.file_wrapper": wrapper}, data_file, 10, 3 * BLOCK_SIZE)
    (filelike,) = wrapper.wrapped
    assert isinstance(filelike, FileRange)
    assert not hasattr(filelike, "fileno")
    assert drain(body)[0] == DATA[10 : 10 + 3 * BLOCK_SIZE]


def test_file_range_seeks_within_its_bounds(data_file: Path) -> None:
    with data_file.open("rb") as file:
        file.seek(100)
        view = FileRange(file, 50, max_read=20)
        assert view.read() == DATA[100:120]  # at most max_read
        assert view.tell() == 20
        assert view.seek(0, os.SEEK_END) == 50
        assert view.read() == b""
        assert view.seek(-10, os.SEEK_CUR) == 40
        assert view.read(100) == DATA[140:150]
        assert view.seek(-5) == 0  # clipped to the range
        assert view.seek(500) == 50
        with pytest.raises(ValueError, match="whence"):
            view.seek(0, 7)


def test_file_chunks_close_releases_the_file_at_any_point(data_file: Path) -> None:
    for taken in (0, 1, 3):
        file = data_file.open("rb")
        body = FileChunks(file, 10, 200, block_size=64)
        iterator = iter(body)
        chunks = [next(iterator) for _ in range(taken)]
        assert b"".join(chunks) == DATA[10 : 10 + 64 * taken]
        body.close()
        body.close()  # idempotent
        assert file.closed


def test_a_missing_file_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        open_file_body({}, tmp_path / "nope", 0, 10)
