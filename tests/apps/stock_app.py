"""Roundup's own WSGI dispatcher, for side-by-side tests against ours.

``application`` is Roundup's stock
:class:`roundup.cgi.wsgi_handler.RequestDispatcher` (not roundup_wsgi's)
serving the tracker named by ``ROUNDUP_TRACKER_HOME``; servers load it as
``stock_app:application`` with the tests directory on ``PYTHONPATH``.
"""

from __future__ import annotations

import os

from roundup.cgi.wsgi_handler import RequestDispatcher

#: Roundup's stock dispatcher for ``$ROUNDUP_TRACKER_HOME``.
application = RequestDispatcher(os.environ["ROUNDUP_TRACKER_HOME"])
