# mod_wsgi script serving the Roundup tracker at /srv/roundup/bugs,
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
    os.environ["ROUNDUP_TRACKER_HOME"] = "/srv/roundup/bugs"

from roundup_wsgi.app import application  # noqa: E402

# Built as the script loads, so a tracker that cannot serve pages (not
# initialised, an option unset) fails here with one line naming the fix.
application.build()
