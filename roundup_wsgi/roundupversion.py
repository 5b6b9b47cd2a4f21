"""What the installed Roundup can do, found from its modules and classes.

Found from Roundup's code, not its version string (the development
snapshot still calls itself 2.6.0).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from roundup.cgi import wsgi_handler as _roundup_wsgi_handler

# Roundup's ``logcontext`` (Roundup >= 2.5: the log lines of one request
# carry a trace id), or None.
try:
    from roundup import logcontext
except ImportError:  # pragma: no cover - Roundup 2.4
    logcontext = None

__all__ = [
    "CACHE_TRACKER_IGNORED",
    "ROUNDUP_ALWAYS_CACHES",
    "TRACE_ID",
    "logcontext",
    "warn_if_cache_tracker_ignored",
]

#: The context variable holding Roundup's trace id (``None`` without
#: :data:`logcontext`).
TRACE_ID: Any = logcontext.ctx_vars["trace_id"] if logcontext is not None else None

#: True where Roundup's own ``RequestDispatcher`` always caches the tracker
#: and warns about a ``cache_tracker`` feature flag (Roundup after 2.6.0,
#: commits ffeb728e and 2f2c7300: its ``get_tracker`` and ``preload``,
#: there since 2.4, are gone).
ROUNDUP_ALWAYS_CACHES = not hasattr(
    _roundup_wsgi_handler.RequestDispatcher, "get_tracker"
)

#: Roundup's warning for a ``cache_tracker`` flag it ignores, word for word.
CACHE_TRACKER_IGNORED = (
    "The 'cache_tracker' feature flag is ignored. Please remove it from "
    "your RequestDispatcher call."
)


def warn_if_cache_tracker_ignored(
    feature_flags: Mapping[str, Any], always_caches: bool, stacklevel: int = 3
) -> None:
    """Warn (``FutureWarning``, :data:`CACHE_TRACKER_IGNORED`) as Roundup does
    when ``feature_flags`` has ``cache_tracker`` and ``always_caches``
    (:data:`ROUNDUP_ALWAYS_CACHES`, read by the caller at call time)."""
    if always_caches and "cache_tracker" in feature_flags:
        warnings.warn(CACHE_TRACKER_IGNORED, FutureWarning, stacklevel=stacklevel)
