"""In-process (webtest) round trips that change data: a login and an issue
created through the web forms (CSRF token from the page, Origin/Referer
checks) and through REST, in every write mode."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from wsgiref.validate import validator

import pytest
from helpers import seeded
from helpers.wsgi import SAME_ORIGIN
from webtest import TestApp

from roundup_wsgi import RequestDispatcher
from roundup_wsgi.options import WRITE_MODES

WEB = "http://localhost/"


@pytest.fixture(params=WRITE_MODES)
def app(request: pytest.FixtureRequest, make_tracker: Callable[[str], Path]) -> TestApp:
    dispatcher = RequestDispatcher(str(make_tracker(WEB)), write_mode=request.param)
    return TestApp(validator(dispatcher), extra_environ={"HTTP_HOST": "localhost"})


def login_form(app: TestApp) -> object:
    page = app.get("/")
    return next(f for f in page.forms.values() if "__login_name" in f.fields)


def log_in(app: TestApp, username: str, password: str) -> None:
    form = login_form(app)
    form["__login_name"] = username
    form["__login_password"] = password
    response = form.submit(headers=SAME_ORIGIN)
    if response.status_int == 302:
        response = response.follow()
    assert f"Hello, {username}".encode() in response.body


def test_login_and_create_issue_through_the_web_form(app: TestApp) -> None:
    log_in(app, seeded.DEMO_USER, seeded.DEMO_PASSWORD)
    page = app.get("/issue?@template=item")
    form = next(f for f in page.forms.values() if "title" in f.fields)
    assert form["@csrf"].value  # the token Roundup put in the page
    form["title"] = "Created through <the> web form"
    form["priority"] = "3"  # required by the classic template ("bug")
    response = form.submit(headers=SAME_ORIGIN)
    assert response.status_int == 302
    assert response.headers["Location"].startswith(WEB + "issue4")
    issue = app.get("/issue4")
    assert b"Created through &lt;the&gt; web form" in issue.body


@pytest.mark.parametrize(
    ("fields", "headers"),
    [
        ({"@csrf": "forged-token"}, SAME_ORIGIN),
        ({}, {"Origin": "http://evil.example", "Referer": "http://evil.example/"}),
    ],
    ids=["invalid-csrf-token", "cross-origin"],
)
def test_forged_form_posts_are_refused(
    app: TestApp, fields: dict[str, str], headers: dict[str, str]
) -> None:
    log_in(app, seeded.DEMO_USER, seeded.DEMO_PASSWORD)
    response = app.post(
        "/issue", {"@action": "new", "title": "forged", **fields}, headers=headers
    )
    assert response.status_int == 200  # the page again, with an error message
    assert b'class="error-message"' in response.body
    assert b"forged" not in app.get("/issue").body


def test_wrong_password_is_refused(app: TestApp) -> None:
    form = login_form(app)
    form["__login_name"] = "admin"
    form["__login_password"] = "wrong"
    response = form.submit(headers=SAME_ORIGIN, status=302)
    assert "error_message=Invalid+login" in response.headers["Location"]
    assert b"Hello, admin" not in response.follow().body


def test_create_issue_through_rest(app: TestApp) -> None:
    response = seeded.post_issue_via_rest(app, "Created through REST", status=201)
    new_id = response.json["data"]["id"]
    item = app.get(f"/rest/data/issue/{new_id}")
    assert item.json["data"]["attributes"]["title"] == "Created through REST"
