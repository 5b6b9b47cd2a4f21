"""Tests of roundup_wsgi.wsgi.mount: several applications in one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from wsgiref.validate import validator

import pytest
from webtest import TestApp

from roundup_wsgi.wsgi import mount as mount_module
from roundup_wsgi.wsgi.mount import MOUNT_NAME, Mount


def echo(label: str) -> Any:
    """A WSGI app answering ``label SCRIPT_NAME PATH_INFO``."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        body = f"{label} {environ['SCRIPT_NAME']} {environ['PATH_INFO']}".encode()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body]

    return app


@pytest.fixture
def mounted() -> TestApp:
    mount = Mount(
        {"bugs": echo("B"), "support": echo("S")},
        title="Roundup trackers index",
        noun="tracker",
    )
    return TestApp(validator(mount), extra_environ={"HTTP_HOST": "localhost"})


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/bugs/", "B /bugs /"),
        ("/bugs/issue1", "B /bugs /issue1"),
        ("/bugs/@@file/style.css", "B /bugs /@@file/style.css"),
        ("/support/user?@template=register", "S /support /user"),
        ("/bugs/a//b/", "B /bugs /a//b/"),
    ],
)
def test_path_is_shifted_to_script_name(mounted: TestApp, path: str, body: str) -> None:
    assert mounted.get(path).text == body


def test_shift_keeps_an_outer_script_name() -> None:
    app = TestApp(Mount({"bugs": echo("B")}))
    reply = app.get("/bugs/issue2", extra_environ={"SCRIPT_NAME": "/roundup"})
    assert reply.text == "B /roundup/bugs /issue2"


def test_index_lists_the_applications(mounted: TestApp) -> None:
    page = mounted.get("/")
    assert page.content_type == "text/html"
    assert page.html.title.string == "Roundup trackers index"
    assert page.html.h1.string == "Roundup trackers index"
    links = [a["href"] for a in page.html.find_all("a")]
    assert links == ["/bugs/", "/support/"]
    under = TestApp(Mount({"bugs": echo("B")})).get(
        "/", extra_environ={"SCRIPT_NAME": "/rt"}
    )
    assert [a["href"] for a in under.html.find_all("a")] == ["/rt/bugs/"]


def test_index_head_and_post(mounted: TestApp) -> None:
    head = mounted.head("/")
    assert head.status_int == 200
    assert head.body == b""
    refused = mounted.post("/", status=405)
    assert "GET" in refused.headers["Allow"]


def test_unknown_name_is_404(mounted: TestApp) -> None:
    reply = mounted.get("/nosuch/issue1", status=404)
    assert "There is no tracker named &#x27;nosuch&#x27; here" in reply.text
    mounted.get("/Bugs/", status=404)  # names are case-sensitive


def test_name_without_slash_redirects(mounted: TestApp) -> None:
    reply = mounted.get("/bugs?x=1", status=301)
    assert reply.headers["Location"] == "http://localhost/bugs/?x=1"
    scripted = mounted.get(
        "/support", extra_environ={"SCRIPT_NAME": "/rt", "wsgi.url_scheme": "https"}
    )
    assert scripted.status_int == 301
    assert scripted.headers["Location"] == "https://localhost/rt/support/"


def test_texts_name_no_application_by_default() -> None:
    app = TestApp(Mount({"bugs": echo("B")}))
    index = app.get("/")
    assert index.html.title.string == "Index"
    assert index.html.h1.string == "Index"
    missing = app.get("/nosuch/", status=404)
    assert (
        "There is no application named &#x27;nosuch&#x27; here; the index at / "
        "lists the applications." in missing.text
    )
    refused = app.post("/", status=405)
    assert "The application index only answers GET and HEAD." in refused.text


def test_texts_are_parameters() -> None:
    app = TestApp(
        Mount({"a": echo("A")}, title="<Sites> & co", noun="site", plural="sitez")
    )
    index = app.get("/")
    assert "<title>&lt;Sites&gt; &amp; co</title>" in index.text
    assert (
        "There is no site named &#x27;b&#x27; here; the index at / lists the sitez."
        in (app.get("/b/", status=404).text)
    )
    assert "The site index only answers GET and HEAD." in app.post("/", status=405).text
    with pytest.raises(ValueError, match=r"^site name 'a/b' cannot be"):
        Mount({"a/b": echo("x")}, noun="site")


def test_bad_names_are_refused() -> None:
    with pytest.raises(ValueError, match="'a/b' cannot be a URL path segment"):
        Mount({"a/b": echo("x")})
    with pytest.raises(ValueError, match="at least one application"):
        Mount({})
    assert MOUNT_NAME.match("bugs-2.x_~")
    assert not MOUNT_NAME.match(".hidden")


def test_the_old_name_is_a_deprecated_alias() -> None:
    with pytest.deprecated_call(match="mount.TrackerMount is deprecated: use Mount"):
        assert mount_module.TrackerMount is Mount
    with pytest.raises(AttributeError, match="no attribute 'TRACKER_NAME'"):
        mount_module.TRACKER_NAME  # noqa: B018
