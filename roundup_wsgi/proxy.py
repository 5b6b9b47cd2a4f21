"""Old import path of :mod:`roundup_wsgi.wsgi.proxy`, kept for existing code.

New code imports from ``roundup_wsgi.wsgi.proxy``; this module re-exports
the same objects.
"""

from __future__ import annotations

from .wsgi.proxy import *  # noqa: F403
from .wsgi.proxy import __all__ as __all__
