"""Roundup's ``Client`` run for one request: the whole of it, or the
static-file fast path (:mod:`.static`).

:func:`run_client` gives the ``Client`` the dispatcher's parts (translator,
file compressor, password memo, kept database) and lets go of the cycles
it makes when it ends; Roundup's ``NotFound`` is answered as Roundup does
(:func:`~.erroranswers.not_found`).
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any

from roundup.cgi.client import NotFound

from . import authmemo, erroranswers, failures, static, staticanswer
from .patches import serve_static_file as static_directory_check
from .request import Request
from .wsgi import finish
from .wsgi.accesslog import escape

if TYPE_CHECKING:
    from .dispatcher import RequestDispatcher

__all__ = ["run_client", "serve_static_file"]

logger = logging.getLogger("roundup_wsgi")


def serve_static_file(
    dispatcher: RequestDispatcher, env: dict[str, Any], request: Request
) -> bool:
    """Try the static-file fast path; ``False`` if Roundup's own path
    must answer instead.

    Roundup's ``Client.inner_main`` turns an unexpected exception while
    serving a file into its own error page (and mails the admin), which
    needs the database: such a request is handed back, unless its status
    line has already been given to the server (then the error goes on).
    """
    tracker = dispatcher._tracker_for_static_files()
    if not static.client_allows_fast_path(tracker.Client):
        return False
    cache_as = None
    if dispatcher.response_cache is not None:
        cache_as = staticanswer.plan(tracker, env)
    try:
        run_client(dispatcher, tracker, env, None, request, True)
    except Exception:
        if request.status is not None:
            raise
        logger.debug(
            "static-file fast path failed for %s; Roundup's path answers",
            escape(str(env.get("PATH_INFO", ""))),
            exc_info=True,
        )
        return False
    request.cache_as = cache_as
    return True


def run_client(
    dispatcher: RequestDispatcher,
    tracker: Any,
    env: dict[str, Any],
    form: Any,
    request: Request,
    static_file: bool = False,
) -> None:
    """Run a ``Client`` of ``tracker`` on the request: the fast path's
    (``static_file``) or Roundup's whole ``main()``."""
    watch: failures.ClientGuard | None = None
    if static_file:
        client = static.make_client(tracker, request, env, dispatcher.translator)
    else:
        client = tracker.Client(tracker, request, env, form, dispatcher.translator)
        watch = failures.ClientGuard(client)
        if dispatcher.auth_memo is not None:
            authmemo.attach(client, dispatcher.auth_memo)
        # Roundup's check lets a sibling directory through (html_private
        # beside html): 404 for a file outside the static directories.
        static_directory_check.install(client, tracker.config)
    request.file_encoder = functools.partial(dispatcher.compressor.body, client)
    try:
        if watch is None:
            static.serve_static_file(client)
        elif dispatcher.db_pool is None:
            client.main()
            watch.check(request.status)
        else:
            with dispatcher.db_pool.lease(tracker, client, watch):
                client.main()
            watch.check(request.status)
    except NotFound:
        erroranswers.not_found(request, env, client.path)
    finally:
        # Let go of the cycles (request <-> client through the encoder,
        # client <-> guard, Client <-> Session): reference counting then
        # frees them, not the cyclic collector (costly in a large process).
        request.file_encoder = None
        if watch is not None:
            watch.release()
            # The Roundup user, for the access log (format_json).
            finish.note(env, "user", getattr(client, "user", None))
        vars(client).pop("session_api", None)
        vars(client).pop("serve_static_file", None)
