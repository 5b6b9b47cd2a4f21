"""The parts a :class:`~.dispatcher.RequestDispatcher` is built of, made
from its :class:`~roundup_wsgi.settings.Settings`: each ``None`` where its option turns
it off.
"""

from __future__ import annotations

import logging
from typing import Any

from roundup.cgi import TranslationService

from . import authmemo, dbpool
from .options import DEFAULTS, DISPATCHER_OPTIONS, Settings
from .wsgi.responsecache import ResponseCache

__all__ = ["auth_memo", "db_pool", "merged_settings", "response_cache", "translator"]

logger = logging.getLogger("roundup_wsgi")


def _given(value: object, default: object) -> bool:
    """False for a keyword left at (or given as) its default."""
    return value is not default and not (
        type(value) is type(default) and value == default
    )


def merged_settings(settings: Settings | None, arguments: dict[str, Any]) -> Settings:
    """The dispatcher's :class:`~roundup_wsgi.settings.Settings`: ``settings`` (or the
    defaults) with the keyword ``arguments`` given (:func:`_given`)."""
    given = {
        name: value
        for name, value in arguments.items()
        if name in DISPATCHER_OPTIONS and _given(value, getattr(DEFAULTS, name))
    }
    if settings is None:
        return Settings.from_kwargs(**given)
    return settings.replace(**given) if given else settings


def response_cache(settings: Settings) -> ResponseCache | None:
    """The cache of whole static answers, or ``None`` (size 0, no fast path)."""
    size = settings.static_response_cache_size
    if size and settings.static_fast_path:
        return ResponseCache(size)
    return None


def auth_memo(settings: Settings) -> Any:
    """The memo of successful password checks (:mod:`.authmemo`), or ``None``
    (off, or Roundup's ``LoginAction.verifyPassword`` replaced)."""
    memo = authmemo.make_memo(settings.auth_memo_lifetime, settings.auth_memo_size)
    if memo is not None and not authmemo.install():
        logger.info(
            "auth_memo: LoginAction.verifyPassword was replaced by "
            "something else; every login hashes the password"
        )
        return None
    return memo


def translator(lang: str | None, home: str) -> Any:
    """Roundup's ``TranslationService`` for ``lang`` (``None``: no language)."""
    return TranslationService.get_translation(lang, tracker_home=home) if lang else None


def db_pool(home: str, settings: Settings) -> dbpool.DatabasePool | None:
    """Each worker thread's kept database (:mod:`.dbpool`), or ``None``."""
    if not settings.reuse_db:
        return None
    pool = dbpool.DatabasePool(home, settings.reuse_db_idle, settings.reuse_db_max)
    pool.keep_nodes = bool(settings.node_cache)
    return pool
