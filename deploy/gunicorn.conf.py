"""gunicorn settings for roundup-wsgi: ``gunicorn -c deploy/gunicorn.conf.py``.

The tracker comes from the environment: ROUNDUP_TRACKER_HOME=/srv/roundup/bugs
(or ROUNDUP_TRACKERS=bugs=/srv/roundup/bugs,support=/srv/roundup/support for
several, each under /<name>/).  Behind nginx on the same machine set
ROUNDUP_WSGI_TRUSTED_PROXIES=127.0.0.1 so its X-Forwarded-* headers count.
Command-line options (or GUNICORN_CMD_ARGS) override these, e.g.
``-b 127.0.0.1:9000 -w 4``.
"""

# The WSGI application (PEP 562 attribute, built from the environment above).
wsgi_app = "roundup_wsgi.app:application"

# Listen on loopback only; nginx (deploy/nginx-roundup.conf) faces the clients.
bind = "127.0.0.1:8080"

# Sync workers: each answers one request at a time, so a slow download holds
# one worker; gunicorn sends attachments with sendfile(2).
workers = 2
worker_class = "sync"
timeout = 120  # seconds; long CSV exports and big uploads
graceful_timeout = 30  # seconds to finish requests on SIGTERM

# Open the tracker in each worker after the fork (sqlite connections and
# Roundup's cached tracker must not be shared between processes).
preload_app = False

# Logs to stderr, picked up by systemd's journal (deploy/roundup-wsgi.service).
accesslog = "-"
errorlog = "-"
loglevel = "info"
