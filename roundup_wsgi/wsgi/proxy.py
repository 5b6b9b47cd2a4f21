"""Honour ``X-Forwarded-*`` headers from trusted reverse proxies only.

Werkzeug's :class:`~werkzeug.middleware.proxy_fix.ProxyFix` applies the
``X-Forwarded-For/-Proto/-Host/-Port/-Prefix`` headers to the environ
(``REMOTE_ADDR``, ``wsgi.url_scheme``, ``HTTP_HOST``/``SERVER_NAME``/
``SERVER_PORT``, ``SCRIPT_NAME``), trusting a *number* of proxies.  It does
not look at who sent the request, so a client that reaches the WSGI server
directly could set those headers itself.  :class:`TrustedProxyFix` applies
ProxyFix only when ``REMOTE_ADDR`` is one of the configured proxy addresses
or networks; from anyone else the forwarding headers (``X-Forwarded-*`` and
RFC 7239 ``Forwarded``) are removed before the application sees them, so
its own checks of them (e.g. a CSRF check of ``X-Forwarded-Host``) cannot be
fed a forged value.

A request from a trusted proxy whose ``X-Forwarded-For`` names no client
(the proxy sent none, or the server dropped it: waitress 3 does unless told
``clear_untrusted_proxy_headers=False``) is marked with
``environ[CLIENT_UNKNOWN] = True``: ``REMOTE_ADDR`` is then the proxy's, not
the client's, and access decisions must not count it (fail closed).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.middleware.proxy_fix import ProxyFix

from .finish import direct_call

__all__ = ["CLIENT_UNKNOWN", "TRUSTED_PEER", "TrustedProxyFix", "parse_networks"]

#: Environ key set to True on a request from a trusted proxy that names no
#: client in ``X-Forwarded-For`` (``REMOTE_ADDR`` is the proxy's own).
CLIENT_UNKNOWN = "roundup_wsgi.proxy.client_unknown"
#: Environ key set to True on a request whose peer (``REMOTE_ADDR`` as the
#: server saw it) is a trusted proxy: its other headers (``X-Request-ID``,
#: :mod:`roundup_wsgi.wsgi.requestid`) may be believed too.
TRUSTED_PEER = "roundup_wsgi.proxy.trusted"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_networks(
    trusted: str | Iterable[str], what: str = "trusted proxy"
) -> tuple[Network, ...]:
    """Parse proxy addresses and networks (``"127.0.0.1 ::1 10.0.0.0/8"``).

    :param trusted: one text with items separated by commas or spaces, or an
        iterable of items; each an IPv4/IPv6 address or CIDR network.
    :param what: what an item is, for the error message.
    :raises ValueError: an item that is neither (the message names it), or
        no item at all.
    """
    if isinstance(trusted, str):
        trusted = re.split(r"[,\s]+", trusted)
    items = [item for item in trusted if item.strip()]
    networks = []
    for item in items:
        try:
            networks.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError:
            raise ValueError(
                f"{what} {item!r} is not an IP address or network: "
                "write e.g. 127.0.0.1, ::1 or 10.0.0.0/8 (host names are not "
                "resolved)"
            ) from None
    if not networks:
        raise ValueError(f"no {what} given: name an address or network, e.g. 127.0.0.1")
    return tuple(networks)


def _client_address(remote_addr: str) -> IPAddress | None:
    """``REMOTE_ADDR`` as an address (IPv4-mapped IPv6 unmapped, zone id
    dropped); None when it is not an IP address (e.g. a Unix socket)."""
    try:
        address = ipaddress.ip_address(remote_addr.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


class TrustedProxyFix:
    """WSGI middleware: Werkzeug's ``ProxyFix`` for requests from trusted
    proxies, forwarding headers removed for everyone else.

    :param app: the WSGI application to wrap.
    :param trusted_proxies: the proxies' addresses or networks (see
        :func:`parse_networks`); compared with ``REMOTE_ADDR``, the address
        the WSGI server saw.
    :param x_for: ``X-Forwarded-For`` values to trust (proxies in a row);
        the same for ``x_proto``, ``x_host``, ``x_port`` and ``x_prefix``
        (``ProxyFix``'s parameters; 0 ignores that header).
    :raises ValueError: a trusted proxy that is not an address or network.
    """

    #: Environ keys of the headers a proxy sets (PEP 3333 ``HTTP_`` names).
    FORWARDING_PREFIXES = ("HTTP_X_FORWARDED_", "HTTP_FORWARDED")

    def __init__(
        self,
        app: Callable[..., Any],
        trusted_proxies: str | Iterable[str],
        *,
        x_for: int = 1,
        x_proto: int = 1,
        x_host: int = 1,
        x_port: int = 1,
        x_prefix: int = 1,
    ) -> None:
        self.app = app
        self._call: Callable[..., Iterable[bytes]] = direct_call(app)
        self.trusted = parse_networks(trusted_proxies)
        self.x_for = x_for
        self.proxy_fix = ProxyFix(
            app,
            x_for=x_for,
            x_proto=x_proto,
            x_host=x_host,
            x_port=x_port,
            x_prefix=x_prefix,
        )

    def is_trusted(self, remote_addr: str) -> bool:
        """True if ``remote_addr`` is in one of the trusted networks."""
        address = _client_address(remote_addr)
        return address is not None and any(
            address.version == network.version and address in network
            for network in self.trusted
        )

    def names_client(self, environ: dict[str, Any]) -> bool:
        """True if ``X-Forwarded-For`` holds the ``x_for``-th address from
        the right (the one ``ProxyFix`` takes for ``REMOTE_ADDR``), non-empty."""
        values = environ.get("HTTP_X_FORWARDED_FOR", "").split(",")
        return (
            self.x_for > 0
            and len(values) >= self.x_for
            and bool(values[-self.x_for].strip())
        )

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        """Answer one request (PEP 3333 middleware)."""
        if self.is_trusted(environ.get("REMOTE_ADDR", "")):
            environ[TRUSTED_PEER] = True
            if not self.names_client(environ):
                environ[CLIENT_UNKNOWN] = True
            result: Iterable[bytes] = self.proxy_fix(environ, start_response)
            return result
        env = {
            key: value
            for key, value in environ.items()
            if not key.startswith(self.FORWARDING_PREFIXES)
        }
        result = self._call(env, start_response)
        return result
