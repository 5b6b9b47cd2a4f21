"""gunicorn settings for one app host of a cluster (deploy/cluster/README.rst):
``gunicorn -c /srv/roundup/deploy/cluster/gunicorn.conf.py``.

The tracker and the host's drain switch come from the environment
(deploy/cluster/roundup-wsgi.env, loaded by systemd's EnvironmentFile=):
ROUNDUP_TRACKER_HOME (on shared storage, the same path on every host),
ROUNDUP_WSGI_TRUSTED_PROXIES (the HAProxy address) and
ROUNDUP_WSGI_DRAIN_FILE (a path on this host only, outside the shared tracker
home: while it exists, GET /-/ready answers 503 and HAProxy stops sending
requests here).
"""

wsgi_app = "roundup_wsgi.app:application"

# This host's address on the network HAProxy reaches (not the public one).
bind = "10.0.0.11:8080"

# Sync workers; HAProxy's 'maxconn 2' on each server line must equal this
# number, so that it queues requests itself and never sends a request to a
# host whose workers are all busy.
workers = 2
worker_class = "sync"
timeout = 120  # seconds; long CSV exports and big uploads
# SIGTERM: stop accepting, let the workers finish their requests (seconds).
graceful_timeout = 30

# Each worker opens the tracker (and its PostgreSQL connection) after the fork.
preload_app = False

accesslog = "-"
errorlog = "-"
loglevel = "info"
