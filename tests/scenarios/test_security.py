"""Roundup's own protections stay effective through our dispatcher, on a
real server (waitress):

* CSRF and Origin: a cross-origin form post (with or without a valid
  ``@csrf`` token), a forged token and a cross-origin REST call are refused
  and change nothing.  (A same-origin post *without* a token is accepted:
  that is Roundup's default ``[web] csrf_enforce_token = yes``; set it to
  ``required`` to refuse those too.)

(``@@file`` / ``_file`` paths that try to leave the static directories are
tested in ``tests/scenarios/security/test_static_paths.py``; forwarded headers from
untrusted clients with the proxy layer.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import loadclient, seeded
from helpers.servers import OUR_APP, ServerProcess, free_port, waitress_command


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, tracker_template: Path
) -> Iterator[tuple[ServerProcess, Path]]:
    port = free_port()
    base = tmp_path_factory.mktemp("security")
    home = seeded.copy_tracker(
        tracker_template, base / "tracker", f"http://127.0.0.1:{port}/"
    )
    process = ServerProcess(
        waitress_command(port, OUR_APP),
        port,
        base / "logs",
        env={"ROUNDUP_TRACKER_HOME": str(home)},
        name="waitress",
    )
    with process:
        yield process, home


def issue_count(home: Path) -> int:
    from roundup import instance

    db = instance.open(str(home)).open("admin")
    try:
        return len(db.issue.list())
    finally:
        db.close()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("origin", "token"),
    [
        ("http://evil.example", "page"),  # cross-origin, valid token
        (None, "forged"),  # same origin, forged token
        ("http://evil.example", None),  # cross-origin, no token
        ("null", "page"),  # sandboxed iframe / file:// origin
    ],
    ids=["cross-origin", "forged-token", "cross-origin-no-token", "null-origin"],
)
def test_forged_form_posts_are_refused(
    server: tuple[ServerProcess, Path], origin: str | None, token: str | None
) -> None:
    process, home = server
    client = loadclient.LoadClient(
        process.url,
        seeded.DEMO_USER,
        seeded.DEMO_PASSWORD,
        "3",
        "form",
        "security",
        loadclient.LoadResult(),
    )
    client.login()
    before = issue_count(home)
    page = client.session.get(client.web + "issue?@template=item")
    fields = {"@action": "new", "title": "forged post", "priority": "3"}
    if token == "page":
        fields["@csrf"] = loadclient.csrf_token(page.text)
    elif token == "forged":
        fields["@csrf"] = "forged-token"
    sender = origin or client.origin
    reply = client.session.post(
        client.web + "issue",
        data=fields,
        headers={"Origin": sender, "Referer": sender + "/issue"},
        allow_redirects=False,
    )
    assert reply.status_code != 302, reply.headers.get("Location")
    assert reply.status_code < 500
    assert issue_count(home) == before
    # The same session can still post legitimately.
    good = client.session.get(client.web + "issue?@template=item")
    ok = client.session.post(
        client.web + "issue",
        data={
            "@action": "new",
            "title": "legitimate post",
            "priority": "3",
            "@csrf": loadclient.csrf_token(good.text),
        },
        headers={"Origin": client.origin, "Referer": client.web + "issue"},
        allow_redirects=False,
    )
    assert ok.status_code == 302
    assert issue_count(home) == before + 1


@pytest.mark.slow
@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example", "X-Requested-With": "rest"},
        {"Origin": "http://127.0.0.1:1", "X-Requested-With": "rest"},
        {"X-Requested-With": "rest"},  # no Origin on a POST
    ],
    ids=["foreign-origin", "other-port", "no-origin"],
)
def test_cross_origin_rest_post_is_refused(
    server: tuple[ServerProcess, Path], headers: dict[str, str]
) -> None:
    process, home = server
    before = issue_count(home)
    session = loadclient.Session()
    reply = session.post(
        process.url + "rest/data/issue",
        json={"title": "cross-origin rest"},
        headers=headers,
        auth=("admin", seeded.ADMIN_PASSWORD),
    )
    assert 400 <= reply.status_code < 500, reply.text
    assert issue_count(home) == before
