"""Old import path of :mod:`roundup_wsgi.wsgi.adapters`, kept for existing code.

New code imports from ``roundup_wsgi.wsgi.adapters``; this module re-exports
the same objects.
"""

from __future__ import annotations

from .wsgi.adapters import *  # noqa: F403
from .wsgi.adapters import __all__ as __all__
