"""Our dispatcher with a small request-body limit, for test_bad_input's real
server: ``ROUNDUP_TRACKER_HOME`` names the tracker, ``BAD_INPUT_LIMIT`` the
limit in bytes."""

from __future__ import annotations

import os

from roundup_wsgi import RequestDispatcher

application = RequestDispatcher(
    os.environ["ROUNDUP_TRACKER_HOME"],
    max_request_body=int(os.environ["BAD_INPUT_LIMIT"]),
)
