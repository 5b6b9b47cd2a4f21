"""Remembered password verifications (roundup_wsgi/authmemo.py).

Against Roundup's own dispatcher, each on its own copy of the seeded
tracker (so that Roundup's login rate limit counts alike on both): the
same answers for right, wrong, changed and retired credentials, a role
change and a locked-out user; the password hash (``roundup.password``'s
PBKDF2 functions, counted) skipped from a client's second request on and
run for every wrong password; nothing remembered for a wrong password; a
password change through the web UI refusing the old password at once.
Also JWT (``[web] jwt_secret``), Roundup's own way to spare API clients the
hash: a token issued through the REST API and used.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import roundup.instance
from helpers import seeded
from helpers.wsgi import REST_HEADERS, SAME_ORIGIN
from roundup import password
from roundup.cgi.actions import LoginAction
from roundup.cgi.wsgi_handler import RequestDispatcher as StockDispatcher
from webtest import TestApp

from roundup_wsgi import RequestDispatcher, authmemo
from roundup_wsgi.options import DISPATCHER_OPTIONS, ConfigError, options_from_text

WEB = "http://localhost/"
ENVIRON = {"HTTP_HOST": "localhost"}
DEMO = seeded.DEMO_AUTH
ADMIN = seeded.ADMIN_AUTH
WRONG = seeded.basic_auth(seeded.DEMO_USER, "not-the-password")
NEW_PASSWORD = "a-new-secret"
NEW = seeded.basic_auth(seeded.DEMO_USER, NEW_PASSWORD)
DEMO_ID = "3"


class Hashes:
    """Counts the calls of ``roundup.password``'s PBKDF2 functions (every
    password hash of Roundup 2.4-2.7 goes through one of them)."""

    def __init__(self) -> None:
        self.count = 0

    def counting(self, function: Callable[..., bytes]) -> Callable[..., bytes]:
        def counted(*args: Any) -> bytes:
            self.count += 1
            return function(*args)

        return counted

    def during(self, action: Callable[[], Any]) -> tuple[Any, int]:
        """``action()``'s result and the hashes it made."""
        before = self.count
        result = action()
        return result, self.count - before


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> Hashes:
    counter = Hashes()
    for name in ("pbkdf2", "pbkdf2_sha512"):
        monkeypatch.setattr(password, name, counter.counting(getattr(password, name)))
    return counter


class Pair:
    """Our dispatcher and Roundup's, each on its own copy of the tracker."""

    def __init__(self, make_tracker: Callable[[str], Path], **options: Any) -> None:
        self.homes = (make_tracker(WEB), make_tracker(WEB))
        self.dispatcher = RequestDispatcher(str(self.homes[0]), **options)
        self.ours = TestApp(self.dispatcher, extra_environ=ENVIRON)
        self.stock = TestApp(StockDispatcher(str(self.homes[1])), extra_environ=ENVIRON)

    @property
    def memo(self) -> authmemo.AuthMemo:
        assert self.dispatcher.auth_memo is not None
        return self.dispatcher.auth_memo

    def get(
        self, hashes: Hashes, headers: dict[str, str], path: str = "/rest/data/issue"
    ) -> tuple[int, Any, int]:
        """GET ``path`` from both; assert the same status, content type and
        body; return the status, the body (parsed if JSON, else text) and
        the hashes ours made."""
        ours, made = hashes.during(
            lambda: self.ours.get(path, headers=headers, expect_errors=True)
        )
        stock = self.stock.get(path, headers=headers, expect_errors=True)
        assert ours.status == stock.status, (path, headers, ours.body, stock.body)
        assert ours.content_type == stock.content_type
        for name in ("WWW-Authenticate", "Retry-After"):
            assert ours.headers.get(name) == stock.headers.get(name), name
        if ours.content_type.endswith("json"):
            assert ours.json == stock.json, (path, headers)
            return ours.status_int, ours.json, made
        assert ours.text == stock.text, (path, headers)
        return ours.status_int, ours.text, made

    def change_user(self, **values: Any) -> None:
        """Set the demo user's properties in both trackers' databases."""
        for home in self.homes:
            edit_user(home, **values)


def edit_user(home: Path, retire: bool = False, **values: Any) -> None:
    db = roundup.instance.open(str(home)).open("admin")
    try:
        if "password" in values:
            values["password"] = password.Password(values["password"], config=db.config)
        if values:
            db.user.set(DEMO_ID, **values)
        if retire:
            db.user.retire(DEMO_ID)
        db.commit()
    finally:
        db.close()


@pytest.fixture
def pair(make_tracker: Callable[[str], Path]) -> Pair:
    return Pair(make_tracker)


def test_the_second_request_skips_the_hash_and_answers_as_roundup(
    pair: Pair, hashes: Hashes
) -> None:
    status, body, made = pair.get(hashes, DEMO)
    assert status == 200
    assert body["data"]["@total_size"] == 3
    assert made == 1
    for _ in range(3):
        assert pair.get(hashes, DEMO)[::2] == (200, 0)
    assert pair.memo.hits == 3
    # Roundup's dispatcher in the same process hashes every time.
    stock = hashes.during(lambda: pair.stock.get("/rest/data/issue", headers=DEMO))
    assert stock[1] == 1
    # Another user, another path: a hash of its own once.
    assert pair.get(hashes, ADMIN, "/rest/data/user/1")[::2] == (200, 1)
    assert pair.get(hashes, ADMIN, "/rest/data/user/1")[::2] == (200, 0)
    assert len(pair.memo) == 2


def test_a_wrong_password_pays_the_hash_and_leaves_nothing(
    pair: Pair, hashes: Hashes
) -> None:
    assert pair.get(hashes, DEMO)[::2] == (200, 1)
    remembered = set(pair.memo._digests._entries)
    for _ in range(3):
        status, body, made = pair.get(hashes, WRONG)
        assert (status, made) == (401, 1)
        assert "Invalid login" in body
    assert set(pair.memo._digests._entries) == remembered
    assert pair.memo.misses == 4  # the first right one and three wrong
    # An unknown user name: Roundup's stand-in check, never remembered.
    stranger = seeded.basic_auth("nobody", seeded.DEMO_PASSWORD)
    assert pair.get(hashes, stranger)[0] == 401
    assert set(pair.memo._digests._entries) == remembered
    # The right password still answers from memory.
    assert pair.get(hashes, DEMO)[::2] == (200, 0)


def test_a_locked_out_user_is_refused_even_with_a_remembered_password(
    pair: Pair, hashes: Hashes
) -> None:
    """Roundup's API login rate limit (4 failures per 10 minutes by default)
    runs before the password check, remembered or not."""
    assert pair.get(hashes, DEMO)[::2] == (200, 1)
    statuses = [pair.get(hashes, WRONG)[0] for _ in range(5)]
    assert statuses == [401, 401, 401, 401, 429]
    status, _, made = pair.get(hashes, DEMO)
    assert (status, made) == (429, 0)


def test_a_password_change_in_the_database_refuses_the_old_one(
    pair: Pair, hashes: Hashes
) -> None:
    assert pair.get(hashes, DEMO)[::2] == (200, 1)
    pair.change_user(password=NEW_PASSWORD)
    assert pair.get(hashes, DEMO)[::2] == (401, 1)
    assert pair.get(hashes, NEW)[::2] == (200, 1)
    assert pair.get(hashes, NEW)[::2] == (200, 0)
    # Back to the old one: a new hash string (new salt), hashed again.
    pair.change_user(password=seeded.DEMO_PASSWORD)
    assert pair.get(hashes, NEW)[::2] == (401, 1)
    assert pair.get(hashes, DEMO)[::2] == (200, 1)


def test_a_retired_user_is_refused_at_once(pair: Pair, hashes: Hashes) -> None:
    assert pair.get(hashes, DEMO)[::2] == (200, 1)
    assert pair.get(hashes, DEMO)[::2] == (200, 0)
    pair.change_user(retire=True)
    status, body, _ = pair.get(hashes, DEMO)
    assert status == 401
    assert "Invalid login" in body


def test_a_role_change_takes_effect_at_once(pair: Pair, hashes: Hashes) -> None:
    """The password is remembered, but Roundup's "Web Access" check runs:
    without a role the user may not log in, with Admin they see users."""
    assert pair.get(hashes, DEMO, "/rest/data/user")[::2] == (200, 1)
    pair.change_user(roles="")
    status, body, made = pair.get(hashes, DEMO, "/rest/data/user")
    assert (status, made) == (401, 0)
    assert "permission to login" in body
    pair.change_user(roles="Admin")
    status, body, made = pair.get(hashes, DEMO, "/rest/data/user")
    assert (status, made) == (200, 0)
    assert {item["id"] for item in body["data"]["collection"]} == {"1", "2", "3"}


def change_password_through_the_web(app: TestApp, auth: dict[str, str]) -> None:
    """The user edit form of ``user3`` (the demo user), as ``auth``."""
    page = app.get(f"/user{DEMO_ID}", headers=auth)
    form = next(f for f in page.forms.values() if "password" in f.fields)
    form["password"] = NEW_PASSWORD
    form["@confirm@password"] = NEW_PASSWORD
    response = form.submit(headers={**auth, **SAME_ORIGIN})
    assert response.status_int == 302
    assert "password+edited+ok" in response.headers["Location"].replace("%20", "+")


@pytest.mark.parametrize("editor", ["user", "admin"])
def test_a_password_change_through_the_web_ui_refuses_the_old_one(
    pair: Pair, hashes: Hashes, editor: str
) -> None:
    auth = DEMO if editor == "user" else ADMIN
    assert pair.get(hashes, DEMO)[::2] == (200, 1)
    assert pair.get(hashes, DEMO)[::2] == (200, 0)
    for app in (pair.ours, pair.stock):
        change_password_through_the_web(app, auth)
    assert pair.get(hashes, DEMO)[::2] == (401, 1)
    assert pair.get(hashes, NEW)[::2] == (200, 1)
    assert pair.get(hashes, NEW)[::2] == (200, 0)


def test_the_login_form_uses_the_memo_and_answers_as_roundup(
    pair: Pair, hashes: Hashes
) -> None:
    """Roundup's login form goes through the same verifyPassword."""

    def log_in(app: TestApp, secret: str) -> str:
        app.reset()
        page = app.get("/")
        form = next(f for f in page.forms.values() if "__login_name" in f.fields)
        form["__login_name"] = seeded.DEMO_USER
        form["__login_password"] = secret
        response = form.submit(headers=SAME_ORIGIN)
        return str(response.status_int) + response.headers.get("Location", "")

    for secret, made in ((seeded.DEMO_PASSWORD, 1), ("wrong", 1)):
        ours, count = hashes.during(lambda s=secret: log_in(pair.ours, s))
        assert ours == log_in(pair.stock, secret)
        assert count == made
    assert hashes.during(lambda: log_in(pair.ours, seeded.DEMO_PASSWORD))[1] == 0


def test_off_switches(make_tracker: Callable[[str], Path], hashes: Hashes) -> None:
    for options in ({"auth_memo_lifetime": 0}, {"auth_memo_size": 0}):
        pair = Pair(make_tracker, **options)
        assert pair.dispatcher.auth_memo is None
        for _ in range(2):
            assert pair.get(hashes, DEMO)[::2] == (200, 1)


def test_the_options_are_in_the_table_with_environment_variables() -> None:
    lifetime = DISPATCHER_OPTIONS["auth_memo_lifetime"]
    size = DISPATCHER_OPTIONS["auth_memo_size"]
    assert (lifetime.default, size.default) == (300.0, 1024)
    assert lifetime.variable == "ROUNDUP_WSGI_AUTH_MEMO_LIFETIME"
    assert size.variable == "ROUNDUP_WSGI_AUTH_MEMO_SIZE"
    assert options_from_text(
        {"auth_memo_lifetime": "60", "auth_memo_size": "0"}, "x"
    ) == {
        "auth_memo_lifetime": 60.0,
        "auth_memo_size": 0,
    }
    with pytest.raises(ConfigError, match="auth_memo_size"):
        options_from_text({"auth_memo_size": "many"}, "x")


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"auth_memo_lifetime": -1.0}, "auth_memo_lifetime"),
        ({"auth_memo_size": -1}, "auth_memo_size"),
        ({"auth_memo_size": 1.5}, "auth_memo_size"),
        ({"auth_memo_lifetime": float("nan")}, "auth_memo_lifetime"),
    ],
    ids=str,
)
def test_bad_option_values_name_the_option(
    tracker_home: Path, options: dict[str, Any], named: str
) -> None:
    with pytest.raises(ValueError, match=named):
        RequestDispatcher(str(tracker_home), **options)


# -- the memo itself ------------------------------------------------------------


def test_an_entry_expires_after_its_lifetime(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1000.0]
    monkeypatch.setattr(authmemo.time, "monotonic", lambda: now[0])
    memo = authmemo.AuthMemo(lifetime=60, size=8)
    digest = memo.digest("3", "secret", "{PBKDF2S5}1000$salt$hash")
    memo.remember(digest)
    now[0] += 59.9
    assert memo.known(digest)  # a hit does not prolong it
    now[0] += 0.1
    assert not memo.known(digest)
    assert len(memo) == 0


def test_the_least_recently_used_entry_goes_first() -> None:
    memo = authmemo.AuthMemo(lifetime=60, size=2)
    a, b, c = (memo.digest(user, "pw", "hash") for user in "abc")
    memo.remember(a)
    memo.remember(b)
    assert memo.known(a)
    memo.remember(c)
    assert memo.known(a)
    assert memo.known(c)
    assert not memo.known(b)
    assert len(memo) == 2


def test_the_digest_binds_every_part_and_holds_no_password() -> None:
    memo = authmemo.AuthMemo()
    parts = ("3", "secret", "{PBKDF2S5}250000$salt$hash")
    digest = memo.digest(*parts)
    assert len(digest) == 32
    others = {
        memo.digest("4", *parts[1:]),
        memo.digest(parts[0], "secreT", parts[2]),
        memo.digest(*parts[:2], parts[2] + "x"),
        memo.digest("3s", "ecret", parts[2]),  # the parts' boundaries count
        authmemo.AuthMemo().digest(*parts),  # another key
    }
    assert digest not in others
    assert len(others) == 5
    assert b"secret" not in digest


def test_a_forked_child_starts_empty_with_its_own_key() -> None:
    memo = authmemo.AuthMemo()
    digest = memo.digest("3", "secret", "hash")
    memo.remember(digest)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report and leave at once
        try:
            fresh = memo.digest("3", "secret", "hash")
            os.write(write, bytes([len(memo), fresh != digest, memo.known(digest)]))
        finally:
            os._exit(0)
    os.close(write)
    try:
        report = os.read(read, 3)
    finally:
        os.close(read)
        os.waitpid(pid, 0)
    assert report == bytes([0, 1, 0])
    assert memo.known(digest)  # the parent's is unchanged
    assert len(memo) == 1


def test_install_leaves_a_replaced_method_alone(
    monkeypatch: pytest.MonkeyPatch, tracker_home: Path
) -> None:
    RequestDispatcher(str(tracker_home))
    assert authmemo.installed()
    assert LoginAction.verifyPassword is authmemo.verify_password
    monkeypatch.setattr(LoginAction, "verifyPassword", lambda self, u, p: 1)
    assert not authmemo.install()
    dispatcher = RequestDispatcher(str(tracker_home))
    assert dispatcher.auth_memo is None  # logged; Roundup's answers


def test_a_tracker_login_action_of_its_own_keeps_its_check(
    make_tracker: Callable[[str], Path], hashes: Hashes
) -> None:
    """A tracker that registers a ``login`` action overriding
    ``verifyPassword`` (e.g. LDAP) keeps it: it runs on every request."""
    home = make_tracker(WEB)
    (home / "extensions").mkdir(exist_ok=True)
    (home / "extensions" / "mylogin.py").write_text(OWN_LOGIN)
    app = TestApp(RequestDispatcher(str(home)), extra_environ=ENVIRON)
    for _ in range(2):
        response = app.get("/rest/data/issue", headers=DEMO)
        assert response.status_int == 200
    assert (home / "verified").read_text() == "33"


OWN_LOGIN = """
from roundup.cgi.actions import LoginAction


class MyLogin(LoginAction):
    def verifyPassword(self, userid, givenpw):
        import os
        with open(os.path.join(self.db.config.TRACKER_HOME, "verified"), "a") as f:
            f.write(userid)
        return LoginAction.verifyPassword(self, userid, givenpw)


def init(instance):
    instance.registerAction("login", MyLogin)
"""


# -- JWT: Roundup's own alternative -------------------------------------------

#: Roundup's documented way to issue tokens (doc/rest.txt, "Adding new
#: rest endpoints" / JWT), cut down: ``POST /rest/jwt/issue`` by a user
#: logged in with Basic auth returns a token valid for an hour with the
#: user's roles, signed with the first ``[web] jwt_secret``.
JWT_ROUTE = """

import datetime as _datetime

from roundup.rest import Routing, _data_decorator


class RestfulInstance(object):
    @Routing.route("/jwt/issue", "POST")
    @_data_decorator
    def issue_jwt(self, *args, **kwargs):  # "input" (2.4) or "input_payload"
        import jwt

        uid = self.db.getuid()
        now = _datetime.datetime.now(_datetime.timezone.utc)
        claims = {
            "sub": uid,
            "iss": self.db.config.TRACKER_WEB,
            "aud": self.db.config.TRACKER_WEB,
            "iat": now,
            "exp": now + _datetime.timedelta(hours=1),
            "roles": list(self.db.user.get_roles(uid)),
        }
        secret = self.db.config.WEB_JWT_SECRET[0]
        return 200, {"jwt": jwt.encode(claims, secret, algorithm="HS256")}
"""


def with_jwt(home: Path) -> Path:
    from roundup.configuration import CoreConfig

    with open(home / "interfaces.py", "a") as file:
        file.write(JWT_ROUTE)
    config = CoreConfig(str(home))
    config["WEB_JWT_SECRET"] = "a-test-secret-of-more-than-32-characters"
    config.save(str(home / "config.ini"))
    return home


@pytest.fixture
def jwt_pair(make_tracker: Callable[[str], Path]) -> Pair:
    pytest.importorskip("jwt", reason="Roundup needs pyjwt for bearer tokens")
    return Pair(lambda web: with_jwt(make_tracker(web)))


def test_a_jwt_issued_through_the_rest_api_logs_in_without_a_hash(
    jwt_pair: Pair, hashes: Hashes
) -> None:
    """A client logs in once with Basic auth for a token, then sends the
    token: Roundup checks its signature (HMAC-SHA256), no password hash."""
    basic = jwt_pair.get(hashes, DEMO)[1]
    answers = []
    for app in (jwt_pair.ours, jwt_pair.stock):
        issued = app.post("/rest/jwt/issue", "{}", headers={**DEMO, **REST_HEADERS})
        token = issued.json["data"]["jwt"]
        bearer = {"Authorization": f"Bearer {token}"}
        response, made = hashes.during(
            lambda app=app, bearer=bearer: app.get("/rest/data/issue", headers=bearer)
        )
        assert made == 0
        answers.append(response.json)
    assert answers[0] == answers[1] == basic
    forged = {"Authorization": "Bearer " + token[:-2] + "xx"}
    refused = [
        app.get("/rest/data/issue", headers=forged, status=401).text
        for app in (jwt_pair.ours, jwt_pair.stock)
    ]
    assert refused[0] == refused[1]


def test_a_jwts_roles_never_reach_the_next_request(jwt_pair: Pair) -> None:
    """Roundup gives a bearer token's roles to the request by setting
    ``db.user.get_roles``; a kept database (``reuse_db``) drops it before
    the next request: an anonymous one after an admin's token may not list
    the users, as with Roundup's dispatcher."""
    for app in (jwt_pair.ours, jwt_pair.stock):
        issued = app.post("/rest/jwt/issue", "{}", headers={**ADMIN, **REST_HEADERS})
        bearer = {"Authorization": "Bearer " + issued.json["data"]["jwt"]}
        assert app.get("/rest/data/user", headers=bearer).status_int == 200
        assert app.get("/rest/data/user", status=403).json["error"]["status"] == 403
    assert jwt_pair.dispatcher.db_pool is not None
    assert jwt_pair.dispatcher.db_pool.stats["reused"] >= 2


# -- time ---------------------------------------------------------------------


def test_a_short_lifetime_hashes_again(
    make_tracker: Callable[[str], Path],
    hashes: Hashes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The memo's clock is ours to move: a wall-clock lifetime fails on a
    # loaded machine, where one request can outlast it.
    now = [1000.0]
    monkeypatch.setattr(authmemo, "time", SimpleNamespace(monotonic=lambda: now[0]))
    pair = Pair(make_tracker, auth_memo_lifetime=0.2)
    assert pair.get(hashes, DEMO)[::2] == (200, 1)
    now[0] += 0.19
    assert pair.get(hashes, DEMO)[::2] == (200, 0)
    now[0] += 0.02  # 0.21 s after the check: expired
    assert pair.get(hashes, DEMO)[::2] == (200, 1)
