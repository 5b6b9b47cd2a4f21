"""Text of deployment files made by the ``roundup-wsgi`` command.

:func:`wsgi_script` writes the mod_wsgi script that ``roundup-wsgi
wsgi-script`` prints; ``deploy/roundup.wsgi`` is its output for
``/srv/roundup/bugs`` (a test keeps the two equal).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

__all__ = ["wsgi_script"]

_TEMPLATE = """\
# mod_wsgi script serving {what},
# written by 'roundup-wsgi wsgi-script'.
#
# Apache runs it in the Python environment of its WSGIDaemonProcess
# (python-home=...), which needs roundup-wsgi installed.  Variables set in the
# environment of the Apache process take precedence over the default below:
# ROUNDUP_TRACKER_HOME (one tracker), ROUNDUP_TRACKERS (several, as
# name=home,name=home, each under /<name>/) and ROUNDUP_WSGI_<OPTION> for
# the options, e.g. ROUNDUP_WSGI_TRUSTED_PROXIES=127.0.0.1.
import os

if not (os.environ.get("ROUNDUP_TRACKER_HOME") or os.environ.get("ROUNDUP_TRACKERS")):
    os.environ[{variable}] = {value}

from roundup_wsgi.app import application  # noqa: E402

# Built as the script loads, so a tracker that cannot serve pages (not
# initialised, an option unset) fails here with one line naming the fix.
application.build()
"""


def wsgi_script(target: str | Mapping[str, str]) -> str:
    """Return a mod_wsgi script (a ``.wsgi`` file) serving ``target``.

    :param target: an absolute tracker home, or ``{name: tracker home}`` for
        several trackers under ``/<name>/``.
    :returns: Python source defining ``application`` (mod_wsgi's default
        callable name, ``WSGICallableObject``).
    """
    if isinstance(target, str):
        what = f"the Roundup tracker at {target}"
        variable, value = "ROUNDUP_TRACKER_HOME", target
    else:
        what = "the Roundup trackers " + ", ".join(
            f"{name} ({home})" for name, home in target.items()
        )
        variable = "ROUNDUP_TRACKERS"
        value = ",".join(f"{name}={home}" for name, home in target.items())
    return _TEMPLATE.format(
        what=what, variable=json.dumps(variable), value=json.dumps(value)
    )
