"""Tests of roundup_wsgi.settings: the one validated settings object."""

from __future__ import annotations

import dataclasses

import pytest

from roundup_wsgi.options import OPTIONS
from roundup_wsgi.settings import DEFAULTS, Settings
from roundup_wsgi.values import ConfigError, WriteMode


def test_settings_has_one_field_per_option_with_its_default() -> None:
    fields = dataclasses.fields(Settings)
    assert [field.name for field in fields] == [option.name for option in OPTIONS]
    assert {field.name: field.default for field in fields} == {
        option.name: option.default for option in OPTIONS
    }
    assert DEFAULTS == Settings() == Settings.from_kwargs()


def test_settings_from_kwargs_checks_and_normalises() -> None:
    settings = Settings.from_kwargs(
        write_mode="buffer", trusted_proxies="127.0.0.1, ::1", drain_file="/tmp/x"
    )
    assert settings.write_mode is WriteMode.BUFFER
    assert settings.trusted_proxies == ("127.0.0.1", "::1")
    assert settings.debug is False  # the table's default
    with pytest.raises(ValueError, match="write_mode='fast' is not a write mode"):
        Settings.from_kwargs(write_mode="fast")
    with pytest.raises(ValueError, match="reuse_db_max=-1 is not a count"):
        Settings.from_kwargs(reuse_db_max=-1)
    with pytest.raises(ValueError, match="static_response_cache_size=-1"):
        Settings.from_kwargs(static_response_cache_size=-1)
    with pytest.raises(ValueError, match="access_log_format='xml' is unknown"):
        Settings.from_kwargs(access_log_format="xml")
    with pytest.raises(ValueError, match="trusted proxy"):
        Settings.from_kwargs(trusted_proxies="not-an-address")
    with pytest.raises(TypeError, match=r"unknown option.*colour"):
        Settings.from_kwargs(colour="blue")


def test_settings_are_frozen_and_replace_checks() -> None:
    settings = Settings.from_kwargs(debug=True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.debug = False  # type: ignore[misc]
    changed = settings.replace(write_mode="stream")
    assert (changed.debug, changed.write_mode) == (True, WriteMode.STREAM)
    assert settings.write_mode is WriteMode.AUTO
    with pytest.raises(ValueError, match="max_request_body=-5"):
        settings.replace(max_request_body=-5)


def test_settings_from_environ() -> None:
    settings = Settings.from_environ(
        {
            "ROUNDUP_WSGI_WRITE_MODE": "buffer",
            "ROUNDUP_WSGI_TRUSTED_PROXIES": "10.0.0.1 10.0.0.2",
            "HOME": "/root",
        }
    )
    assert settings.write_mode is WriteMode.BUFFER
    assert settings.trusted_proxies == ("10.0.0.1", "10.0.0.2")
    with pytest.raises(ConfigError, match="ROUNDUP_WSGI_DEBUG='maybe'"):
        Settings.from_environ({"ROUNDUP_WSGI_DEBUG": "maybe"})
    with pytest.raises(
        ConfigError,
        match=r"reuse_db_max=-2 is not a count.*set in the environment: "
        r"ROUNDUP_WSGI_REUSE_DB_MAX='-2'",
    ):
        Settings.from_environ({"ROUNDUP_WSGI_REUSE_DB_MAX": "-2"})
