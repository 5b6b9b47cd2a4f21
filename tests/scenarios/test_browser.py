"""Browser end-to-end: Debian's Chromium (headless), driven by Playwright for
Python, uses the demo tracker (:mod:`roundup_wsgi.cli.demo`) served by our
dispatcher under waitress and under granian.

Steps: open the front page, log in as ``demo``, create an issue with a
file upload through the classic form, open the issue, download the file
(bytes equal to the upload), log out.  A screenshot per step is saved as
``test-artifacts/browser/<server>/<n>-<step>.png`` (git-ignored).

Playwright's own browser download is never used: Chromium is
``/usr/bin/chromium`` (``apt-get install chromium``), found with
:func:`system.require_program`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers.servers import (
    OUR_APP,
    TESTS_DIR,
    ServerProcess,
    free_port,
    granian_command,
    waitress_command,
)
from helpers.system import require_program

from roundup_wsgi.cli.demo import DEMO_USERNAME, create_demo

pytestmark = pytest.mark.slow

ARTIFACTS = TESTS_DIR.parent / "test-artifacts" / "browser"
#: Milliseconds Playwright waits for a page or element (2 shared cores).
TIMEOUT_MS = 60_000
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
#: The uploaded file: binary, with bytes a text conversion would change.
UPLOAD_NAME = "browser-upload.bin"
UPLOAD = hashlib.sha256(b"roundup-wsgi").digest() * 64 + b"\x00\r\n\xff" * 100


@pytest.fixture(scope="module")
def chromium_path() -> str:
    return require_program("chromium", "apt-get install chromium", "/usr/bin/chromium")


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.mark.parametrize(
    ("server_name", "command"),
    [("waitress", waitress_command), ("granian", granian_command)],
)
def test_demo_tracker_in_chromium(
    server_name: str,
    command: Callable[[int, str], list[str]],
    browser: object,
    tmp_path: Path,
) -> None:
    port = free_port()
    web = f"http://127.0.0.1:{port}/"
    demo = create_demo(tmp_path / "demo", web=web)
    shots = ARTIFACTS / server_name
    shots.mkdir(parents=True, exist_ok=True)
    for old in shots.glob("*.png"):
        old.unlink()
    upload = tmp_path / UPLOAD_NAME
    upload.write_bytes(UPLOAD)
    title = f"Created in Chromium under {server_name}"

    server = ServerProcess(
        command(port, OUR_APP),
        port,
        tmp_path / "logs",
        env={"ROUNDUP_TRACKER_HOME": demo.home},
        name=server_name,
    )
    with server:
        context = browser.new_context(accept_downloads=True)  # type: ignore[attr-defined]
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        step = 0

        def shot(name: str) -> None:
            nonlocal step
            step += 1
            page.screenshot(path=str(shots / f"{step}-{name}.png"), full_page=True)

        try:
            page.goto(web)
            assert (
                "Hello, anonymous" in page.content()
                or page.locator("input[name=__login_name]").count()
            )
            shot("front-page")

            page.fill("input[name=__login_name]", DEMO_USERNAME)
            page.fill("input[name=__login_password]", demo.demo_password)
            with page.expect_navigation():
                page.click("input[type=submit][value='Login']")
            assert f"Hello, {DEMO_USERNAME}" in page.content()
            shot("logged-in")

            page.goto(web + "issue?@template=item")
            page.fill("input[name=title]", title)
            page.select_option("select[name=priority]", label="bug")
            page.fill("textarea[name='@note']", "Uploaded from a real browser.")
            page.set_input_files("input[type=file][name='@file']", str(upload))
            shot("new-issue-form")
            with page.expect_navigation():
                page.click("input[type=submit][name=submit_button]")
            assert title in page.content(), page.locator(
                ".error-message"
            ).all_inner_texts()
            issue_url = page.url.split("?", 1)[0]
            assert "/issue" in issue_url
            shot("issue-created")

            page.goto(issue_url)
            link = page.locator(f"a:text-is('{UPLOAD_NAME}')").first
            assert link.count() == 1
            shot("issue-page")

            href = link.get_attribute("href")
            assert href
            with page.expect_download() as info:
                page.evaluate(
                    """href => {
                        const a = document.createElement('a');
                        a.href = href; a.download = '';
                        document.body.appendChild(a); a.click();
                    }""",
                    href,
                )
            saved = tmp_path / "downloaded.bin"
            info.value.save_as(str(saved))
            assert saved.read_bytes() == UPLOAD
            shot("downloaded")

            with page.expect_navigation():
                page.click("a:text-is('Logout')")
            assert f"Hello, {DEMO_USERNAME}" not in page.content()
            assert page.locator("input[name=__login_name]").count() == 1
            shot("logged-out")
        finally:
            context.close()
    assert len(list(shots.glob("*.png"))) == 7
