"""One warning when requests arrive for an address ``[tracker] web`` is not.

Roundup's CSRF check (``roundup.cgi.client.Client.handle_csrf``) refuses a
form post or REST change whose ``Referer``, ``Origin``, ``X-Forwarded-Host``
or ``Host`` does not match ``[tracker] web`` ("Invalid Referer", "Invalid
Origin", "Invalid HOST"), and logs it only as a failed login or action.
:class:`WebAddressCheck` applies the same comparisons to requests that
change state (methods other than GET, HEAD and OPTIONS: the ones Roundup
checks), honouring the tracker's ``csrf_enforce_header_*`` settings, and
logs one warning per process naming the setting to change; after that it
does nothing.  Header values are logged escaped (``ascii()``).  Behind a
trusted proxy, :class:`~roundup_wsgi.wsgi.proxy.TrustedProxyFix` has
already applied the forwarded headers, and ``X-Forwarded-Host`` is compared
first, as Roundup does.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

__all__ = ["SAFE_METHODS", "WebAddressCheck", "refused_header"]

logger = logging.getLogger("roundup_wsgi")

#: Methods Roundup's CSRF check leaves alone (RFC 9110 9.2.1, safe methods).
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Longest header value quoted in the warning, in characters.
MAX_QUOTED = 200


class _Rule:
    """One tracker's ``[tracker] web`` and which headers Roundup enforces."""

    def __init__(self, dispatcher: Any) -> None:
        tracker = getattr(dispatcher, "tracker", None)
        if tracker is not None:
            config = tracker.config
        else:
            from roundup.configuration import CoreConfig

            config = CoreConfig(dispatcher.home)
        web = str(config["TRACKER_WEB"])
        self.base = web if web.endswith("/") else web + "/"
        self.ini = os.path.join(dispatcher.home, "config.ini")
        self.enforced = {
            header: str(config[f"WEB_CSRF_ENFORCE_HEADER_{header}"]) != "no"
            for header in ("REFERER", "ORIGIN", "X-FORWARDED-HOST", "HOST")
        }


def refused_header(
    environ: Mapping[str, Any], base: str, enforced: Mapping[str, bool]
) -> tuple[str, str] | None:
    """The first header Roundup's CSRF check would refuse against ``base``
    (``[tracker] web`` with its trailing slash), as ``(name, value)``; None
    if all match.  The comparisons are Roundup's (``handle_csrf``,
    ``is_referer_header_ok``, ``is_origin_header_ok``); on REST paths the
    Referer and Origin are not compared (Roundup also accepts its
    ``allowed_api_origins`` there).

    :param enforced: ``{"REFERER": bool, "ORIGIN": ..., "X-FORWARDED-HOST":
        ..., "HOST": ...}``: False where the tracker's
        ``csrf_enforce_header_*`` is ``no``.
    """
    path = environ.get("PATH_INFO", "")
    api = path == "/rest" or path.startswith("/rest/")
    referer = environ.get("HTTP_REFERER")
    if referer is not None and enforced["REFERER"] and not api:
        parts = urlsplit(referer)
        if not base.startswith(f"{parts.scheme}://{parts.netloc}/"):
            return "Referer", referer
    origin = environ.get("HTTP_ORIGIN")
    matches = origin is None or base.startswith(origin + "/")
    if not matches and enforced["ORIGIN"] and not api:
        return "Origin", str(origin)
    forwarded = environ.get("HTTP_X_FORWARDED_HOST")
    if forwarded is not None:
        name, host, enforce = (
            "X-Forwarded-Host",
            forwarded,
            enforced["X-FORWARDED-HOST"],
        )
    else:
        name, host = "Host", environ.get("HTTP_HOST")
        enforce = enforced["HOST"]
    if host is not None and enforce and base.find(f"://{host}/") not in (4, 5):
        return name, host
    return None


class WebAddressCheck:
    """Logs one warning per process when a request that changes state
    carries a ``Referer``, ``Origin`` or ``Host`` Roundup would refuse
    against the tracker's ``[tracker] web`` (see the module documentation).
    Not a layer of its own: :class:`~roundup_wsgi.health.Operations` calls
    :meth:`check` for requests whose method is not in :data:`SAFE_METHODS`
    (a GET costs no call).

    :param dispatchers: ``{name: RequestDispatcher}``, one tracker at the
        root named ``""``; mounted ones are told by the first segment of
        ``PATH_INFO``.
    """

    def __init__(self, dispatchers: Mapping[str, Any]) -> None:
        self.mounted = "" not in dispatchers
        self.rules = {name: _Rule(d) for name, d in dispatchers.items()}
        self.warned = False
        self._lock = threading.Lock()

    def check(self, environ: dict[str, Any]) -> None:
        """Compare the headers of one request with ``[tracker] web`` and
        warn (once per process) if Roundup would refuse them; nothing once
        warned.  ``environ`` is not changed."""
        if not self.warned:
            self._check(environ)

    def _check(self, environ: dict[str, Any]) -> None:
        path = environ.get("PATH_INFO", "")
        if self.mounted:
            name, _, rest = path[1:].partition("/")
            rule = self.rules.get(name)
            environ = {**environ, "PATH_INFO": "/" + rest}
        else:
            rule = self.rules[""]
        if rule is None:
            return
        refused = refused_header(environ, rule.base, rule.enforced)
        if refused is None:
            return
        with self._lock:
            if self.warned:
                return
            self.warned = True
        header, value = refused
        logger.warning(
            "a %s request arrived with %s: %s, which [tracker] web = %s does "
            "not match: Roundup refuses such form posts and REST changes "
            "('Invalid %s'); set 'web' in the [tracker] section of %s to the "
            "address browsers use (behind a reverse proxy, also trust it: "
            "--trusted-proxy or ROUNDUP_WSGI_TRUSTED_PROXIES). Logged once",
            ascii(str(environ.get("REQUEST_METHOD", ""))[:16]),
            header,
            ascii(value[:MAX_QUOTED]),
            rule.base,
            "HOST" if header == "Host" else header,
            rule.ini,
        )
