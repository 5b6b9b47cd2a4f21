"""The "operations off" application: a bare dispatcher, served like the others.

``benchmarks.bare:application`` is :class:`roundup_wsgi.RequestDispatcher`
for ``ROUNDUP_TRACKER_HOME`` with nothing around it: no ``/-/`` routing, no
access log, no metrics (what ``make_app`` builds with every operations
feature off and the health checks taken away).  :mod:`benchmarks.operations`
serves it next to ``roundup_wsgi.app:application`` with the access log and
the metrics on, to measure what those cost a real server per request.
"""

from __future__ import annotations

import os

from roundup_wsgi import RequestDispatcher

application = RequestDispatcher(os.environ["ROUNDUP_TRACKER_HOME"])
