"""The settings object: every option of an application, validated, in one
immutable :class:`Settings` built from the table
:data:`roundup_wsgi.options.OPTIONS` (waitress's ``Adjustments`` style).

:func:`~roundup_wsgi.app.make_app`,
:class:`~roundup_wsgi.dispatcher.RequestDispatcher`, ``roundup-wsgi serve``,
``ROUNDUP_WSGI_*`` variables and PasteDeploy all make one and pass it down;
:data:`DEFAULTS` holds the table's defaults.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from .options import (
    DISPATCHER_OPTIONS,
    ENV_PREFIX,
    OPTIONS,
    check_option,
    options_from_environ,
)
from .values import ConfigError, WriteMode

__all__ = ["DEFAULTS", "Settings"]

_BY_NAME = {option.name: option for option in OPTIONS}
_DEFAULT: dict[str, Any] = {option.name: option.default for option in OPTIONS}


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    """Every option of an application, validated, in one immutable object.

    One field per row of :data:`~roundup_wsgi.options.OPTIONS`, with its
    default (checked below at import).  Build it with :meth:`from_kwargs`
    (which checks the values; the plain constructor does not),
    :meth:`from_environ`, or :meth:`replace`.  ``Settings()`` holds the
    defaults (:data:`DEFAULTS`).
    """

    debug: bool = _DEFAULT["debug"]
    timing: bool = _DEFAULT["timing"]
    lang: str | None = _DEFAULT["lang"]
    feature_flags: dict[str, Any] | None = _DEFAULT["feature_flags"]
    write_mode: WriteMode = _DEFAULT["write_mode"]
    static_fast_path: bool = _DEFAULT["static_fast_path"]
    max_request_body: int | None = _DEFAULT["max_request_body"]
    static_cache_size: int = _DEFAULT["static_cache_size"]
    static_response_cache_size: int = _DEFAULT["static_response_cache_size"]
    reuse_db: bool = _DEFAULT["reuse_db"]
    reuse_db_max: int = _DEFAULT["reuse_db_max"]
    reuse_db_idle: float = _DEFAULT["reuse_db_idle"]
    node_cache: bool = _DEFAULT["node_cache"]
    auth_memo_lifetime: float = _DEFAULT["auth_memo_lifetime"]
    auth_memo_size: int = _DEFAULT["auth_memo_size"]
    trusted_proxies: tuple[str, ...] | None = _DEFAULT["trusted_proxies"]
    access_log: bool = _DEFAULT["access_log"]
    metrics: bool = _DEFAULT["metrics"]
    health_networks: tuple[str, ...] | None = _DEFAULT["health_networks"]
    drain_file: str | None = _DEFAULT["drain_file"]
    request_id_header: str = _DEFAULT["request_id_header"]
    send_request_id: bool = _DEFAULT["send_request_id"]
    access_log_format: str = _DEFAULT["access_log_format"]

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> Settings:
        """Settings from option values given in Python, each checked by the
        table (the others default).

        :raises TypeError: a name that is no option (the message lists them).
        :raises ValueError: a bad value (the message names the option and
            the fix).
        """
        unknown = sorted(set(kwargs) - set(_BY_NAME))
        if unknown:
            raise TypeError(
                f"unknown option(s) {', '.join(unknown)}: the options are "
                + ", ".join(_BY_NAME)
            )
        return cls(**{name: check_option(name, v) for name, v in kwargs.items()})

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from the ``ROUNDUP_WSGI_<OPTION>`` variables
        (:func:`~roundup_wsgi.options.options_from_environ`).

        :raises ConfigError: a value of the wrong type or refused by the
            option's check (the message names the variables).
        """
        environ = os.environ if environ is None else environ
        found = options_from_environ(environ)
        try:
            return cls.from_kwargs(**found)
        except ValueError as exc:
            given = ", ".join(
                f"{ENV_PREFIX}{name.upper()}={environ[ENV_PREFIX + name.upper()]!r}"
                for name in found
            )
            raise ConfigError(f"{exc} (set in the environment: {given})") from None

    def replace(self, **kwargs: Any) -> Settings:
        """A copy with the options ``kwargs`` changed (checked as by
        :meth:`from_kwargs`)."""
        checked = Settings.from_kwargs(**kwargs)
        return dataclasses.replace(
            self, **{name: getattr(checked, name) for name in kwargs}
        )

    def dispatcher_options(self) -> dict[str, Any]:
        """``{name: value}`` of the ``"dispatcher"`` options."""
        return {name: getattr(self, name) for name in DISPATCHER_OPTIONS}


if [field.name for field in dataclasses.fields(Settings)] != list(_BY_NAME):
    raise AssertionError("Settings' fields are not the options of OPTIONS")

#: The default settings.
DEFAULTS = Settings()
