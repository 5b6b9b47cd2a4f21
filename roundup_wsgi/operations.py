"""The operations layers :func:`~roundup_wsgi.app.make_app` puts around the
trackers, and the access log's default handler.

From the inside out: :class:`~roundup_wsgi.health.Operations`
(``/-/health``, ``/-/ready``, ``/-/metrics``, and the ``[tracker] web``
check of :class:`~roundup_wsgi.webcheck.WebAddressCheck` for requests that
change something), :class:`~roundup_wsgi.wsgi.requestid.RequestIds`,
:class:`~roundup_wsgi.wsgi.proxy.TrustedProxyFix` and
:class:`~roundup_wsgi.wsgi.finish.FinishHooks` (metrics, access log), each
only where the settings ask for it.
"""

from __future__ import annotations

import logging
from typing import Any

from .dispatcher import RequestDispatcher, new_request_id
from .health import DEFAULT_NETWORKS, Operations
from .metrics import Metrics
from .settings import Settings
from .webcheck import WebAddressCheck
from .wsgi.accesslog import LOGGER_NAME as ACCESS_LOGGER
from .wsgi.accesslog import AccessLog, LineHandler
from .wsgi.finish import FinishHook, FinishHooks
from .wsgi.requestid import RequestIds
from .wsgi.types import WSGIApp

__all__ = ["AccessLogHandler", "operations_stack"]


def operations_stack(
    app: WSGIApp,
    dispatchers: dict[str, RequestDispatcher],
    labels: dict[str, str],
    settings: Settings,
) -> WSGIApp:
    """``app`` (the trackers) in the operations layers ``settings`` ask
    for, in the module docstring's order; ``dispatchers`` and ``labels`` by
    mount name (``""``: one tracker), the labels for metrics and the log."""
    trusted_proxies = settings.trusted_proxies
    networks = (
        list(settings.health_networks)
        if settings.health_networks is not None
        else [*DEFAULT_NETWORKS, *(trusted_proxies or [])]
    )
    counters = Metrics(labels) if settings.metrics else None
    app = Operations(
        app,
        dispatchers,
        networks=networks,
        drain_file=settings.drain_file,
        metrics=counters,
        check=WebAddressCheck(dispatchers).check,
    )
    request_id_header = settings.request_id_header
    send_request_id = settings.send_request_id
    hooks: list[FinishHook] = []
    if counters is not None:
        hooks.append(counters.finished)
    if settings.access_log:
        _log_to_stderr_unless_configured()
        hooks.append(
            AccessLog(
                format=settings.access_log_format,  # type: ignore[arg-type]
                names=labels,
                name_field="tracker",
            )
        )
    # The response's id header: sent by FinishHooks when there are hooks
    # (it wraps start_response anyway: one list of headers more, no layer),
    # else by RequestIds.  Without a proxy's id to take, Roundup's trace id
    # (made by the dispatcher, and noted for FinishHooks) is the request's:
    # no RequestIds layer under FinishHooks.
    respond = send_request_id and not hooks
    if respond or trusted_proxies is not None:
        app = RequestIds(app, new_request_id, header=request_id_header, respond=respond)
    if trusted_proxies is not None:
        from .wsgi.proxy import TrustedProxyFix

        app = TrustedProxyFix(app, list(trusted_proxies))
    if hooks:
        app = FinishHooks(
            app,
            hooks,
            id_header=request_id_header if send_request_id else None,
            new_id=new_request_id,
        )
    return app


def _log_to_stderr_unless_configured() -> None:
    """Give the access logger a stderr handler (the bare line, level INFO,
    not propagated) unless it has handlers of its own: an admin's logging
    configuration for ``roundup_wsgi.access`` wins, while a server's setup
    of the root logger (a ``levelname:name:`` prefix, level WARNING) does
    not swallow or prefix the lines."""
    access = logging.getLogger(ACCESS_LOGGER)
    if access.handlers:
        return
    access.addHandler(AccessLogHandler())
    access.setLevel(logging.INFO)
    access.propagate = False


class AccessLogHandler(LineHandler):
    """The access log's handler when none is configured (and that of
    ``roundup-wsgi serve``): a
    :class:`~roundup_wsgi.wsgi.accesslog.LineHandler` (the bare line to a
    stream, default ``sys.stderr``, flushed) that declines Roundup's
    ``context_filter``.

    Roundup adds that filter (``roundup.configuration.CoreConfig``) to every
    handler of every logger each time it loads a tracker's configuration;
    it changes nothing on these bare lines but costs microseconds per line.
    """

    def addFilter(self, filter: Any) -> None:  # noqa: N802 - logging's name
        """Add ``filter`` unless it is Roundup's ``context_filter``."""
        owner = getattr(filter, "__self__", None)
        if getattr(filter, "__name__", "") == "context_filter" and type(
            owner
        ).__module__.startswith("roundup."):
            return
        super().addFilter(filter)
