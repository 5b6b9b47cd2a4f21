"""``roundup-wsgi check``'s checks of the tracker's config.ini: it reads,
every option Roundup needs is set, and ``[tracker] web`` is the URL the
tracker is served at."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

from ..tracker import host_port, unset_options
from .findings import Finding
from .output import one_line

__all__ = ["read_config", "web_finding"]


def read_config(path: str) -> tuple[Any, str, list[Finding]]:
    """Read the config.ini of the tracker at ``path`` as Roundup does.

    :returns: ``(config, backend, findings)``: Roundup's ``CoreConfig``
        (None when it cannot be read), the backend's name (``"unset"``),
        and the findings ``config.ini`` and ``required options`` (only the
        failed ``config.ini`` when it cannot be read).
    """
    from roundup.configuration import CoreConfig

    try:
        config: Any = CoreConfig(path)
    except Exception as exc:
        return (
            None,
            "",
            [
                Finding(
                    "config.ini",
                    False,
                    f"{os.path.join(path, 'config.ini')} cannot be read: "
                    f"{one_line(exc)}",
                    "correct the option or line it names in config.ini",
                )
            ],
        )
    unset = unset_options(config)
    if any(option.name == "RDBMS_BACKEND" for option in unset):
        backend = "unset"
    else:
        backend = config["RDBMS_BACKEND"]
    found = Finding("config.ini", True, f"read; backend {backend}")
    return config, backend, [found, _required_options(unset, path)]


def _required_options(unset: list[Any], path: str) -> Finding:
    """The ``required options`` finding: failed if an option Roundup needs
    has no value (reading it raises ``OptionUnsetError``)."""
    ini = os.path.join(path, "config.ini")
    if not unset:
        return Finding("required options", True, "every required option is set")
    names = ", ".join(f"[{option.section}] {option.setting}" for option in unset)
    return Finding(
        "required options",
        False,
        f"{names} {'is' if len(unset) == 1 else 'are'} not set: Roundup "
        "answers every page with an error",
        f"set {'it' if len(unset) == 1 else 'them'} in {ini} (e.g. 'web = "
        "https://bugs.example/' in [tracker], 'domain = bugs.example' and "
        "'host = localhost' in [mail])",
    )


def web_finding(
    config: Any, path: str, url: str | None, balancer: bool = False
) -> Finding:
    """The ``tracker web`` finding: ``[tracker] web`` is set, an absolute
    http(s) URL, and the same as ``url`` (None: not compared; with
    ``balancer``, the load balancer's URL, a warning when not given)."""
    served = "the load balancer's URL" if balancer else "the address browsers use"
    ini = os.path.join(path, "config.ini")
    if not config.options["TRACKER_WEB"].isset():
        return Finding(
            "tracker web",
            False,
            "[tracker] web is not set",
            f"set 'web = {url or 'https://your.host/'}' in the [tracker] "
            f"section of {ini} ({served})",
        )
    web = str(config["TRACKER_WEB"])
    parts = urlsplit(web)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return Finding(
            "tracker web",
            False,
            f"[tracker] web = {web} is not an absolute http(s) URL",
            f"set 'web = https://your.host/' in the [tracker] section of {ini}",
        )
    if url is None:
        return Finding(
            "tracker web",
            None,
            f"[tracker] web = {web}; not compared (give --url URL, {served})",
            warn=balancer,
        )
    want = url if url.endswith("/") else url + "/"
    if _normal(web) == _normal(want):
        return Finding("tracker web", True, f"[tracker] web = {web} matches {url}")
    return Finding(
        "tracker web",
        False,
        f"[tracker] web = {web} but the tracker is served at {want}"
        f"{' (the balancer)' if balancer else ''}: Roundup "
        "refuses form posts whose Origin/Referer/Host differ from [tracker] "
        "web and builds its links from it",
        f"set 'web = {want}' in the [tracker] section of {ini} (or serve it at {web})",
    )


def _normal(url: str) -> tuple[str, str, int, str]:
    """A URL's scheme, host, port (default filled in) and path with a slash."""
    parts = urlsplit(url)
    host, port = host_port(url)
    path = parts.path if parts.path.endswith("/") else parts.path + "/"
    return parts.scheme.lower(), host, port, path
