"""Ready-made WSGI applications for servers that import ``module:callable``.

``gunicorn roundup_wsgi.app:application`` (or granian, uWSGI, mod_wsgi)
serves the tracker named by the environment variable
``ROUNDUP_TRACKER_HOME``.  The application is built on first access of the
``application`` attribute (PEP 562 module ``__getattr__``), so importing this
module for :func:`make_app` needs no environment.
"""

from __future__ import annotations

import os
from typing import Any

from .dispatcher import WRITE_MODES, RequestDispatcher

__all__ = ["ENV_TRACKER_HOME", "ENV_WRITE_MODE", "make_app"]

#: Environment variable naming the tracker home served by ``application``.
ENV_TRACKER_HOME = "ROUNDUP_TRACKER_HOME"
#: Environment variable choosing the write mode of ``application``.
ENV_WRITE_MODE = "ROUNDUP_WSGI_WRITE_MODE"


def make_app(tracker_home: str | os.PathLike[str], **options: Any) -> RequestDispatcher:
    """Return a :class:`~roundup_wsgi.dispatcher.RequestDispatcher` for one tracker.

    :param tracker_home: the tracker home directory.
    :param options: keyword arguments of ``RequestDispatcher`` (``debug``,
        ``timing``, ``lang``, ``feature_flags``, ``write_mode``).
    :raises ValueError: bad tracker home or option (the message names it).
    """
    return RequestDispatcher(os.fspath(tracker_home), **options)


def _from_environment() -> RequestDispatcher:
    home = os.environ.get(ENV_TRACKER_HOME)
    if not home:
        raise RuntimeError(
            f"roundup_wsgi.app:application needs the environment variable "
            f"{ENV_TRACKER_HOME} set to a tracker home, e.g. "
            f"{ENV_TRACKER_HOME}=/srv/roundup/bugs"
        )
    write_mode = os.environ.get(ENV_WRITE_MODE, "buffer")
    if write_mode not in WRITE_MODES:
        raise RuntimeError(
            f"{ENV_WRITE_MODE}={write_mode!r} is not a write mode: use one of "
            + ", ".join(WRITE_MODES)
        )
    return make_app(home, write_mode=write_mode)


_application: RequestDispatcher | None = None


def __getattr__(name: str) -> Any:
    # PEP 562: build ``application`` lazily, from the environment.
    global _application
    if name == "application":
        if _application is None:
            _application = _from_environment()
        return _application
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
