"""A Client's caught errors reported to the guard
(roundup_wsgi/patches/client_errors.py): the database ``opendb`` opens is
watched too; Roundup's admin mail is skipped when the watcher says so."""

from __future__ import annotations

from typing import Any

import pytest

from roundup_wsgi.patches import client_errors, database_errors


class Client:
    """Stands for Roundup's Client: ``opendb`` opens the tracker's real
    database; ``send_error_to_admin`` records the mail."""

    def __init__(self, tracker: Any, fail: BaseException | None = None) -> None:
        self.tracker, self.fail, self.mails = tracker, fail, []
        self.db: Any = None

    def opendb(self, username: str) -> None:
        if self.fail is not None:
            raise self.fail
        if self.db is None:
            self.db = self.tracker.open(username)

    def send_error_to_admin(self, subject: str, html: str, txt: str) -> Any:
        self.mails.append(subject)

    def serve_static_file(self, file: str) -> Any:
        return None


def test_opendb_watches_the_database_it_opened_once(tracker: Any, watcher: Any) -> None:
    client = Client(tracker)
    client_errors.install(client, watcher)
    client.opendb("admin")
    try:
        assert set(database_errors.WATCHED) <= set(vars(client.db))
        sql = client.db.sql
        client.opendb("admin")  # the same database: not wrapped again
        assert client.db.sql is sql
    finally:
        client.db.close()
    client_errors.remove(client)
    assert not {"opendb", "send_error_to_admin"} & set(vars(client))


def test_an_opendb_error_is_noted_and_raised(tracker: Any, watcher: Any) -> None:
    error = OSError("unable to open database file")
    client = Client(tracker, fail=error)
    client_errors.install(client, watcher)
    with pytest.raises(OSError, match="unable to open"):
        client.opendb("admin")
    assert watcher.noted == [error]


@pytest.mark.parametrize("mail", [True, False])
def test_the_admin_mail_goes_as_the_watcher_says(
    tracker: Any, watcher: Any, mail: bool
) -> None:
    watcher.mail = mail
    client = Client(tracker)
    client_errors.install(client, watcher)
    error = ValueError("caught by Roundup's last-resort handler")
    try:
        raise error
    except ValueError:
        client.send_error_to_admin("error", "<p>", "text")
    assert watcher.caught == [error]
    assert client.mails == (["error"] if mail else [])
    client.send_error_to_admin("no exception", "", "")  # outside a handler
    assert client.mails[-1:] == ["no exception"]
