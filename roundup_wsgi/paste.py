"""PasteDeploy entry point: ``use = egg:roundup-wsgi`` in an ini file.

::

    [app:main]
    use = egg:roundup-wsgi
    tracker_home = %(here)s/bugs
    # or several trackers, each under /<name>/:
    # trackers =
    #     bugs = %(here)s/bugs
    #     support = %(here)s/support
    trusted_proxies = 127.0.0.1 ::1
    write_mode = buffer

Every option of the table :data:`roundup_wsgi.options.OPTIONS` is accepted
under its own name, converted from text to the option's type (see
:func:`roundup_wsgi.values.convert`) into one
:class:`~roundup_wsgi.settings.Settings`.
Relative tracker homes are taken relative to the ini file's directory.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from .app import make_app
from .options import options_from_text
from .settings import Settings
from .tracker import TrackerHomeError
from .values import ConfigError, parse_trackers
from .wsgi.types import WSGIApp

__all__ = ["app_factory"]


def app_factory(global_config: Mapping[str, str], **local_conf: str) -> WSGIApp:
    """Build the application from an ``[app:...]`` section (PasteDeploy's
    ``paste.app_factory`` protocol: ``factory(global_config, **local_conf)``).

    :param global_config: PasteDeploy's globals; ``here`` (the ini file's
        directory) resolves relative tracker homes, ``__file__`` is named in
        errors.
    :param local_conf: the section's options, as text: exactly one of
        ``tracker_home`` or ``trackers`` (``name = home`` lines, or
        ``name=home`` items separated by commas), ``trusted_proxies``, and
        the dispatcher's options.
    :raises ConfigError: a missing home, both ``tracker_home`` and
        ``trackers``, an unknown option or a value of the wrong type, or a
        tracker home that is not one (the message names the option and the
        ini file).
    """
    where = f"[app] section of {global_config.get('__file__', 'the ini file')}"
    here = global_config.get("here") or os.getcwd()
    settings = dict(local_conf)
    home = settings.pop("tracker_home", None)
    several = settings.pop("trackers", None)
    if (home is None) == (several is None):
        raise ConfigError(
            f"{where}: set exactly one of 'tracker_home = /srv/roundup/bugs' "
            "(one tracker at /) or 'trackers = bugs=/srv/roundup/bugs, "
            "support=/srv/roundup/support' (several, each under /<name>/)"
        )
    options = options_from_text(settings, where, also=("tracker_home", "trackers"))

    def resolve(path: str) -> str:
        return os.path.join(here, os.path.expanduser(path.strip()))

    target: str | dict[str, str]
    if several is not None:
        parsed = parse_trackers(several, f"{where}: trackers")
        target = {name: resolve(path) for name, path in parsed.items()}
    else:
        target = resolve(str(home))
    try:
        return make_app(target, settings=Settings.from_kwargs(**options))
    except TrackerHomeError as exc:
        option = "trackers" if several is not None else "tracker_home"
        raise ConfigError(f"{where}: {option}: {exc}") from None
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
