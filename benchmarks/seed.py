"""The benchmark's tracker: deterministic, seeded, built with Roundup's own API.

:func:`build_tracker` makes a classic/sqlite tracker with ``issues`` issues
(each with one to three messages; every tenth with a small text
attachment), a large binary attachment for the download measurements, a
``[web] jwt_secret``, and a REST endpoint ``POST /rest/jwt/issue`` that
hands a basic-authenticated user a JSON Web Token (following the recipe of
Roundup's REST documentation, "Adding new rest endpoints"; Roundup itself
only validates tokens).  The same ``issues`` and ``seed`` give the same
titles, texts and links every time.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Mapping
from pathlib import Path

from roundup import instance
from roundup.configuration import CoreConfig

from roundup_wsgi.tracker import create_tracker

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))

from helpers import seeded  # type: ignore[import-not-found]  # noqa: E402

__all__ = ["ADMIN_PASSWORD", "BIG_FILE_NAME", "build_tracker"]

ADMIN_PASSWORD = "benchmark-admin"
BIG_FILE_NAME = "big.bin"
SEED = 20261121

_VOCABULARY = (
    "login page crash export search index mail gateway template detector "
    "schema backend sqlite postgres session cookie upload attachment query "
    "priority status user role permission timeout cache render unicode "
    "keyword nosy message reply history journal retire restore csv rest"
)
WORDS = _VOCABULARY.split()

#: interfaces.py of the benchmark tracker: ``POST /rest/jwt/issue`` returns
#: ``{"jwt": TOKEN}`` for a user logged in with basic auth, signed with the
#: first ``[web] jwt_secret``, with the user's roles and Roundup's issuer
#: and audience (``[tracker] web``), valid for a day.
INTERFACES_PY = """
import datetime

from roundup.anypy.datetime_ import utcnow
from roundup.exceptions import Unauthorised
from roundup.rest import Routing, _data_decorator


class RestfulInstance(object):
    @Routing.route("/jwt/issue", "POST")
    @_data_decorator
    def issue_jwt(self, input_payload):
        import jwt

        scheme = self.client.env.get("HTTP_AUTHORIZATION", "").split(" ")[0]
        if scheme.lower() != "basic":
            raise Unauthorised("a token needs a login with basic auth")
        uid = self.db.getuid()
        now = utcnow()
        claims = {
            "sub": uid,
            "iss": self.db.config.TRACKER_WEB,
            "aud": self.db.config.TRACKER_WEB,
            "iat": now,
            "exp": now + datetime.timedelta(days=1),
            "roles": list(self.db.user.get_roles(uid)),
        }
        secret = self.db.config.WEB_JWT_SECRET[0]
        return 200, {"jwt": jwt.encode(claims, secret, algorithm="HS256")}
"""


def _sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def build_tracker(
    home: Path,
    issues: int,
    big_file_size: int,
    seed: int = SEED,
    backend: str = "sqlite",
    settings: Mapping[str, str | int] | None = None,
) -> str:
    """Create and seed the benchmark tracker at ``home`` (must not exist).

    :param issues: number of issues (>= 1).
    :param big_file_size: bytes of the large attachment (a ``file`` item
        named :data:`BIG_FILE_NAME`, ``application/octet-stream``).
    :param seed: seed of the random choices (titles, texts, links).
    :param backend: Roundup's database backend (``postgresql``: give the
        ``[rdbms]`` options in ``settings``, as ``tests/helpers/pg.py``).
    :param settings: more config.ini options (``create_tracker``'s).
    :returns: the large attachment's URL path, ``fileN/big.bin``.
    :raises ValueError: ``issues`` < 1.
    """
    if issues < 1:
        raise ValueError(f"issues={issues}: the benchmark needs at least 1 issue")
    rng = random.Random(seed)
    create_tracker(
        home,
        admin_password=ADMIN_PASSWORD,
        web="http://127.0.0.1/",
        backend=backend,
        settings=settings,
    )
    (home / "interfaces.py").write_text(INTERFACES_PY)
    config = CoreConfig(str(home))
    config["WEB_JWT_SECRET"] = f"{rng.getrandbits(256):064x}"  # benchmark only
    config.save(str(home / "config.ini"))

    db = instance.open(str(home)).open("admin")
    try:
        statuses = db.status.list()
        priorities = db.priority.list()
        for number in range(1, issues + 1):
            messages = [
                db.msg.create(content=_sentence(rng, rng.randint(20, 120)), author="1")
                for _ in range(rng.randint(1, 3))
            ]
            files = []
            if number % 10 == 1:
                files.append(
                    db.file.create(
                        name=f"notes{number}.txt",
                        type="text/plain",
                        content=_sentence(rng, 200).encode(),
                    )
                )
            db.issue.create(
                title=_sentence(rng, rng.randint(3, 8)).capitalize(),
                messages=messages,
                files=files,
                status=rng.choice(statuses),
                priority=rng.choice(priorities),
            )
        db.commit()
    finally:
        db.close()
    return str(
        seeded.add_file(home, BIG_FILE_NAME, seeded.pattern_bytes(big_file_size))
    )


#: Name of the text attachment :func:`add_text_file` stores.
TEXT_FILE_NAME = "big.log"


def log_text(size: int) -> bytes:
    """``size`` bytes of a plausible server log (deterministic): compresses
    about 7:1 with gzip, as real logs do."""
    lines = b"".join(
        b"2026-11-30 12:%02d:%02d INFO worker-%d GET /issue%d 200 in %d ms\n"
        % (i // 60 % 60, i % 60, i % 7, i * 7919 % 100000, i % 113)
        for i in range(100_000)
    )
    return (lines * (size // len(lines) + 1))[:size]


def add_text_file(home: Path, size: int) -> str:
    """Store a ``size``-byte ``text/plain`` attachment (:func:`log_text`) in
    the tracker at ``home``; returns its URL path, ``fileN/big.log``."""
    return str(seeded.add_file(home, TEXT_FILE_NAME, log_text(size), type="text/plain"))
