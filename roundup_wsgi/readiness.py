"""The checks behind ``/-/ready`` (:mod:`roundup_wsgi.health`): each
tracker's, and the process's.

* A tracker (:class:`Readiness`): ``database``, initialised (checked
  without opening it: the probe never creates a database), then opened and
  one row read (for PostgreSQL and MySQL this is the server answering);
  ``db_directory``, writable (sqlite, anydbm); ``sessions``, a Redis
  session database answers (``[sessiondb] backend = redis``).
  Run at most once per :data:`READY_INTERVAL` seconds.
* The process: ``files`` (:func:`files_check`, uncached) and ``stopping``
  (:func:`begin_stop`).

Each check is ``"ok"`` or a short reason naming no path or version.
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import tempfile
import threading
import time
from typing import Any

from .dbstate import NOT_INITIALISED, database_state
from .tracker import close_database, open_tracker

__all__ = [
    "READY_INTERVAL",
    "Readiness",
    "begin_stop",
    "fd_reserve",
    "files_check",
    "stopping",
]

logger = logging.getLogger("roundup_wsgi.health")

#: Seconds a readiness result is reused (at most one database open per
#: tracker per this interval, per process).
READY_INTERVAL = 1.0

_stopping = threading.Event()


def fd_reserve(limit: int) -> int:
    """File descriptors that must stay free for ``/-/ready`` to pass: a
    tenth of ``limit`` (the ``RLIMIT_NOFILE`` soft limit), at least 32 (a
    request opens up to 6 for an sqlite tracker)."""
    return max(32, limit // 10)


def files_check(fd_dir: str = "/proc/self/fd") -> str:
    """``"ok"``, or why the process is near its file descriptor limit
    (fewer than :func:`fd_reserve` left below ``RLIMIT_NOFILE``'s soft
    limit).  ``"ok"`` when there is no limit or ``fd_dir`` cannot be
    listed (not Linux)."""
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if limit == resource.RLIM_INFINITY:
        return "ok"
    try:
        used = len(os.listdir(fd_dir))
    except OSError:
        return "ok"
    if limit - used < fd_reserve(limit):
        return f"near the file descriptor limit: {used} of {limit} open"
    return "ok"


def begin_stop() -> None:
    """Mark this process as stopping: ``/-/ready`` answers 503 with the
    failing check ``stopping`` from now on.  Called by ``roundup-wsgi
    serve`` on SIGTERM and by ``deploy/gunicorn.conf.py`` in each worker."""
    _stopping.set()


def stopping() -> bool:
    """True once :func:`begin_stop` was called in this process."""
    return _stopping.is_set()


class Readiness:
    """The readiness checks of one tracker, run at most once per
    ``interval`` seconds.

    :param dispatcher: the tracker's
        :class:`~roundup_wsgi.dispatcher.RequestDispatcher` (its cached
        tracker instance is used, else one is opened once).
    :param interval: seconds a result is reused.
    """

    def __init__(self, dispatcher: Any, interval: float = READY_INTERVAL) -> None:
        self.dispatcher = dispatcher
        self.interval = interval
        self._lock = threading.Lock()
        self._checked = -float("inf")
        self._result: dict[str, str] = {}
        self._tracker: Any = None

    def checks(self) -> dict[str, str]:
        """``{check name: "ok" or a short reason}``, from the last run if it
        is younger than ``interval`` seconds."""
        with self._lock:
            now = time.monotonic()
            if now - self._checked >= self.interval:
                self._result = self._run()
                self._checked = time.monotonic()
            return dict(self._result)

    def _instance(self) -> Any:
        tracker = getattr(self.dispatcher, "tracker", None)
        if tracker is not None:
            return tracker
        if self._tracker is None:
            self._tracker = open_tracker(self.dispatcher.home, True)
        return self._tracker

    def _run(self) -> dict[str, str]:
        try:
            tracker = self._instance()
        except Exception as exc:
            logger.warning(
                "readiness: tracker %s cannot be opened",
                self.dispatcher.home,
                exc_info=True,
            )
            return {"tracker": _reason("cannot be opened", exc)}
        result: dict[str, str] = {}
        config = tracker.config
        db = self._open(tracker, result)
        try:
            if str(config.RDBMS_BACKEND) in ("sqlite", "anydbm"):
                result["db_directory"] = _writable(str(config.DATABASE))
            if (
                db is not None
                and str(getattr(config, "SESSIONDB_BACKEND", "") or "") == "redis"
            ):
                result["sessions"] = _redis_answers(db)
        finally:
            if db is not None:
                try:
                    close_database(db)
                except Exception:
                    logger.debug(
                        "readiness: closing the database failed", exc_info=True
                    )
        return result

    def _open(self, tracker: Any, result: dict[str, str]) -> Any:
        """The check ``database`` into ``result``; the open database, or
        None if it is not initialised or cannot be opened."""
        db = None
        try:
            # Checked first: Roundup's backends create a missing database
            # on open, and a readiness probe must not.
            if database_state(tracker.config)[0] != NOT_INITIALISED:
                db = tracker.open("admin")
            else:
                result["database"] = "not initialised"
        except Exception as exc:
            logger.warning(
                "readiness: database of %s cannot be opened",
                self.dispatcher.home,
                exc_info=True,
            )
            result["database"] = _reason("cannot be opened", exc)
        if db is not None:
            try:
                # No user 1 (IndexError): the database answered all the same.
                with contextlib.suppress(IndexError):
                    db.user.get("1", "username")
                result["database"] = "ok"
            except Exception as exc:
                result["database"] = _reason("cannot be read", exc)
        return db


def _reason(what: str, exc: BaseException) -> str:
    """A short reason without paths or versions: what failed and the
    exception's class name."""
    return f"{what} ({type(exc).__name__})"


def _writable(directory: str) -> str:
    """ "ok" if a file can be created in ``directory`` (created and removed
    at once), else the reason."""
    try:
        with tempfile.TemporaryFile(dir=directory, prefix=".ready-"):
            pass
    except OSError as exc:
        return _reason("not writable", exc)
    return "ok"


def _redis_answers(db: Any) -> str:
    try:
        db.getSessionManager().redis.ping()
    except Exception as exc:
        return _reason("Redis session database does not answer", exc)
    return "ok"
