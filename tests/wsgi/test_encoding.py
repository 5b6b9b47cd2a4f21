"""Tests of roundup_wsgi.wsgi.encoding: Accept-Encoding with q-values, the
media types compressed already."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roundup_wsgi.wsgi.encoding import accepted_codings, is_compressed_type


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, ()),
        ("", ()),
        ("gzip", ("gzip",)),
        ("gzip, deflate, br", ("br", "gzip")),  # ties: the server's order
        ("gzip, deflate, br, zstd", ("zstd", "br", "gzip")),
        ("identity", ()),
        ("deflate", ()),
        ("gzip;q=0", ()),  # RFC 9110 12.5.3: q=0 is "not acceptable"
        ("gzip;q=0, br", ("br",)),
        ("GZIP; Q=0.000", ()),
        ("br;q=0.5, gzip", ("gzip", "br")),  # higher q first
        ("gzip;q=0.2, br;q=0.8", ("br", "gzip")),
        ("*", ("zstd", "br", "gzip")),
        ("*;q=0", ()),
        ("*;q=0, gzip", ("gzip",)),
        ("gzip;q=0, *", ("zstd", "br")),
        ("x-gzip", ("gzip",)),  # RFC 9110 8.4.1.3
        ("gzip;q=bogus", ("gzip",)),
        (" , gzip ,", ("gzip",)),
        ("gzip;q=2", ("gzip",)),
    ],
)
def test_accepted_codings(header: str | None, expected: tuple[str, ...]) -> None:
    assert accepted_codings(header) == expected


_CODING = st.sampled_from(["gzip", "br", "zstd", "deflate", "identity", "*", "x-gzip"])
_Q = st.sampled_from(["", ";q=0", ";q=0.0", ";q=0.5", ";q=1", ";q=0.001", ";q=x"])


@given(st.lists(st.tuples(_CODING, _Q), max_size=6))
def test_accepted_codings_never_lists_a_refused_coding(
    items: list[tuple[str, str]],
) -> None:
    """A coding whose first mention has q=0 (or, unnamed, ``*`` with q=0) is
    never listed, and nothing but zstd, br and gzip, each once."""
    header = ", ".join(coding + q for coding, q in items)
    result = accepted_codings(header)
    assert len(set(result)) == len(result)
    assert set(result) <= {"zstd", "br", "gzip"}
    first: dict[str, str] = {}
    for coding, q in items:
        first.setdefault("gzip" if coding == "x-gzip" else coding, q)
    for coding in result:
        q = first.get(coding, first.get("*"))
        assert q is not None
        assert q not in (";q=0", ";q=0.0")


def test_accepted_codings_limited_to_the_servers() -> None:
    assert accepted_codings("br, gzip", ("gzip",)) == ("gzip",)


@pytest.mark.parametrize(
    ("content_type", "compressed"),
    [
        ("image/png", True),
        ("image/jpeg", True),
        ("IMAGE/WEBP", True),
        ("image/svg+xml", False),
        ("image/bmp", False),
        ("image/x-icon", False),
        ("audio/ogg", True),
        ("video/webm", True),
        ("application/zip", True),
        ("application/gzip", True),
        ("application/x-7z-compressed", True),
        (
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            True,
        ),
        ("font/woff2", True),
        ("text/plain", False),
        ("text/css; charset=utf-8", False),
        ("application/octet-stream", False),
        ("application/json", False),
        ("", False),
        (None, False),
    ],
)
def test_is_compressed_type(content_type: str | None, compressed: bool) -> None:
    assert is_compressed_type(content_type) is compressed


def test_the_old_import_path_gives_the_same_objects() -> None:
    """The names that moved to compressors and variants still import from
    roundup_wsgi.wsgi.encoding."""
    from roundup_wsgi.wsgi import compressors, encoding, variants

    for module in (compressors, variants):
        assert set(module.__all__) <= set(encoding.__all__)
        for name in module.__all__:
            assert getattr(encoding, name) is getattr(module, name), name
