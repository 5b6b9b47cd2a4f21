"""Remembered password verifications (the ``auth_memo_lifetime`` and
``auth_memo_size`` options).

Roundup 2.4.0, 2.5, 2.6 and its development snapshot (2.7.0.dev) log a
REST or XML-RPC client in with HTTP Basic auth on every request:
``Client.determine_user`` calls ``LoginAction.verifyLogin``, which looks
the user name up, checks the login rate limit, calls
``LoginAction.verifyPassword`` and checks the ``Web Access`` permission
(``roundup/cgi/client.py``, ``roundup/cgi/actions.py``; the same code in
all four).  ``verifyPassword`` compares the password given with the stored
hash (``givenpw == stored``: ``roundup.password.JournalPassword.__eq__``),
which hashes the given password again: PBKDF2-SHA512 with 250,000 rounds
by default (Roundup 2.5 and later; 2.4.0: PBKDF2-SHA1, 2,000,000 rounds),
some 0.1 to 0.2 s of CPU per API call.

That comparison is a pure function of the password and the stored hash
string (the hash names its scheme, rounds and salt): once it said yes, it
says yes for that pair for ever.  :func:`install` replaces (through
:mod:`roundup_wsgi.patches.verify_password`)
``LoginAction.verifyPassword`` with :func:`verify_password`, which
remembers the pairs that verified, for the clients of a dispatcher that
has a memo (:func:`attach`), and otherwise runs Roundup's method as it is:

* what is remembered is an HMAC-SHA256 digest, under a key drawn from
  ``os.urandom`` by each process, of the user id, the password and the
  stored hash string: it proves nothing to whoever does not know the
  password, and no password is kept;
* only verifications that succeeded are remembered; a wrong password is
  verified in full by Roundup's own method every time (and so pays the
  full hash), and nothing about it is kept;
* the stored hash is read from the database on every request and is part
  of the digest: a password change (a new hash) takes effect on the next
  request, in every process;
* everything else in Roundup's login runs as before on every request:
  the user name lookup (a retired user is unknown at once), the rate
  limit (a locked-out user is refused even with the right password), the
  ``Web Access`` and ``Rest Access``/``Xmlrpc Access`` permissions (a
  role change takes effect at once);
* an entry is forgotten ``lifetime`` seconds after the verification that
  made it (a hit does not prolong it), and beyond ``size`` entries the
  least recently used goes;
* Roundup's method answers in full (nothing remembered or used) for a
  stored hash it would migrate (``[web] migrate_passwords`` and an old
  scheme or too few rounds: the migration rehashes and stores), for the
  user id ``2`` (``verifyLogin`` checks an unknown user name's password
  against user 2, so that an unknown name costs a known one's time: that
  stays so), and for a user without a password or a password that is not
  a string.

A tracker whose ``login`` action overrides ``verifyPassword`` keeps its
own (it is not Roundup's method, so it is not replaced); one that inherits
Roundup's gets this one.  Roundup's own ``RequestDispatcher`` in the same
process never attaches a memo, so its clients verify every time.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
import threading
import time
from typing import Any

from roundup import password

from .options import DEFAULT_AUTH_MEMO_LIFETIME as DEFAULT_LIFETIME
from .options import DEFAULT_AUTH_MEMO_SIZE as DEFAULT_SIZE
from .options import check_option
from .patches import verify_password as verify_patch
from .wsgi.lru import ByteBoundedLRU

__all__ = [
    "DEFAULT_LIFETIME",
    "DEFAULT_SIZE",
    "AuthMemo",
    "attach",
    "install",
    "installed",
    "verify_password",
]

#: The attribute of a Roundup ``Client`` holding its dispatcher's memo.
CLIENT_ATTRIBUTE = "_roundup_wsgi_auth_memo"

#: The user id whose password ``verifyLogin`` checks for an unknown user
#: name (Roundup's literal ``"2"``, the anonymous user of a new tracker).
_STAND_IN_USERID = "2"

#: Roundup's ``LoginAction.verifyPassword``, as imported.
_ROUNDUP_VERIFY = verify_patch.ORIGINAL

_lock = threading.Lock()


class _Digests(ByteBoundedLRU[float]):
    """Digest -> the ``time.monotonic()`` it expires at; each entry counts
    as one "byte", so ``max_bytes`` is the number of entries."""

    def expires(self, digest: bytes) -> float | None:
        return self._lookup(digest)

    def put(self, digest: bytes, expires: float) -> None:
        self._store(digest, expires, 1)

    def drop(self, digest: bytes, expires: float) -> None:
        self._discard(digest, expires)


class AuthMemo:
    """The successful password verifications of one process, remembered
    for a while (see the module docstring).

    Thread-safe (one lock, held for dictionary operations only).  A forked
    child starts with an empty memo and a key of its own.

    :param lifetime: seconds an entry is valid after the verification that
        made it (> 0).
    :param size: most entries kept (> 0), least recently used evicted.
    :raises ValueError: ``lifetime`` or ``size`` is not a positive number
        (checked by the options table; the message names the option).
    """

    def __init__(
        self, lifetime: float = DEFAULT_LIFETIME, size: int = DEFAULT_SIZE
    ) -> None:
        lifetime = check_option("auth_memo_lifetime", lifetime)
        size = check_option("auth_memo_size", size)
        if not lifetime or not size:
            raise ValueError(
                f"AuthMemo(lifetime={lifetime!r}, size={size!r}): 0 turns the "
                "memo off, so make none (make_memo gives None for it)"
            )
        self.lifetime = float(lifetime)
        self.size = size
        self._pid = os.getpid()
        self._key = os.urandom(32)
        self._digests = _Digests(size)
        #: Statistics for tests and logs (not counted under a lock: may
        #: miss one under concurrency): verifications answered from the
        #: memo, and those Roundup's method made (successful and not).
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        self._check_process()
        return len(self._digests)

    def _check_process(self) -> None:
        if os.getpid() != self._pid:
            with _lock:
                if os.getpid() != self._pid:
                    self._key = os.urandom(32)
                    self._digests.clear()
                    self._pid = os.getpid()

    def digest(self, userid: str, given: str, stored: str) -> bytes:
        """HMAC-SHA256 under this process's key of the user id, the password
        given and the stored hash string (each length-prefixed)."""
        self._check_process()
        mac = hmac.new(self._key, digestmod=hashlib.sha256)
        for part in (userid, given, stored):
            data = part.encode("utf-8", "surrogatepass")
            mac.update(struct.pack(">Q", len(data)))
            mac.update(data)
        return mac.digest()

    def known(self, digest: bytes) -> bool:
        """True if ``digest`` was remembered less than ``lifetime`` seconds
        ago (an expired entry is dropped)."""
        expires = self._digests.expires(digest)
        if expires is None:
            return False
        if time.monotonic() < expires:
            return True
        self._digests.drop(digest, expires)
        return False

    def remember(self, digest: bytes) -> None:
        """Remember ``digest`` for ``lifetime`` seconds from now."""
        self._digests.put(digest, time.monotonic() + self.lifetime)

    def clear(self) -> None:
        """Forget everything."""
        self._digests.clear()


def make_memo(lifetime: float, size: int) -> AuthMemo | None:
    """The memo the options ask for: ``None`` (off) when ``lifetime`` or
    ``size`` is 0.

    :raises ValueError: a negative or non-numeric value (the message names
        the option).
    """
    lifetime = check_option("auth_memo_lifetime", lifetime)
    size = check_option("auth_memo_size", size)
    if lifetime == 0 or size == 0:
        return None
    return AuthMemo(lifetime, size)


def attach(client: Any, memo: AuthMemo) -> None:
    """Let ``client`` (a Roundup ``Client`` before ``main()``) use ``memo``."""
    setattr(client, CLIENT_ATTRIBUTE, memo)


def verify_password(self: Any, userid: str, givenpw: Any) -> Any:
    """``LoginAction.verifyPassword`` with the comparison remembered (see the
    module docstring); same arguments and answers as Roundup's (``1`` if
    the password is right, else ``0``)."""
    memo = getattr(self.client, CLIENT_ATTRIBUTE, None)
    if memo is None or not isinstance(givenpw, str) or userid == _STAND_IN_USERID:
        return _ROUNDUP_VERIFY(self, userid, givenpw)
    db = self.db
    stored = db.user.get(userid, "password")
    if not isinstance(stored, password.Password) or not isinstance(userid, str):
        return _ROUNDUP_VERIFY(self, userid, givenpw)
    try:
        if db.config.WEB_MIGRATE_PASSWORDS and stored.needs_migration(config=db.config):
            return _ROUNDUP_VERIFY(self, userid, givenpw)
        digest = memo.digest(userid, givenpw, str(stored))
    except Exception:
        return _ROUNDUP_VERIFY(self, userid, givenpw)
    if memo.known(digest):
        memo.hits += 1
        return 1
    memo.misses += 1
    verified = _ROUNDUP_VERIFY(self, userid, givenpw)
    if verified:
        # Roundup's method compared givenpw with this very hash (a Password
        # is always true, so its blank-password rule did not answer).
        memo.remember(digest)
    return verified


def installed() -> bool:
    """True once :func:`install` replaced ``LoginAction.verifyPassword``."""
    return verify_patch.installed()


def install() -> bool:
    """Make :func:`verify_password` Roundup's ``LoginAction.verifyPassword``
    (:mod:`roundup_wsgi.patches.verify_password`; process-wide, once;
    clients without a memo get Roundup's method).

    :returns: ``True`` if installed (or already), ``False`` when something
        else already replaced Roundup's method (it is left alone).
    """
    return verify_patch.install(verify_password)
