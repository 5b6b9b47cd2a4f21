"""gunicorn settings for roundup-wsgi: ``gunicorn -c deploy/gunicorn.conf.py``.

The tracker comes from the environment: ROUNDUP_TRACKER_HOME=/srv/roundup/bugs
(or ROUNDUP_TRACKERS=bugs=/srv/roundup/bugs,support=/srv/roundup/support for
several, each under /<name>/).  Behind nginx on the same machine set
ROUNDUP_WSGI_TRUSTED_PROXIES=127.0.0.1 so its X-Forwarded-* headers count.
Command-line options (or GUNICORN_CMD_ARGS) override these, e.g.
``-b 127.0.0.1:9000 -w 4``.
"""

import ipaddress
import os
import re

# The WSGI application (PEP 562 attribute, built from the environment above).
wsgi_app = "roundup_wsgi.app:application"

# Listen on loopback only; nginx (deploy/nginx-roundup.conf) faces the clients.
bind = "127.0.0.1:8080"


# gunicorn itself sets wsgi.url_scheme from X-Forwarded-Proto (and -Ssl,
# -Protocol) sent by forwarded_allow_ips, by default loopback: trust the same
# proxies as roundup-wsgi does, nobody else (an invalid item is left to
# roundup-wsgi, which names it when the workers start).
def _networks(text):
    for item in re.split(r"[,\s]+", text):
        try:
            network = ipaddress.ip_network(item, strict=False)
        except ValueError:
            continue
        # one address as itself: gunicorn before 22 compares strings
        yield str(network.network_address if network.num_addresses == 1 else network)


forwarded_allow_ips = ",".join(
    _networks(os.environ.get("ROUNDUP_WSGI_TRUSTED_PROXIES", ""))
)

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
# The access log is roundup-wsgi's (logger roundup_wsgi.access: Apache's
# combined format, the duration in microseconds and Roundup's trace id, bytes
# counted as sent), not gunicorn's: ROUNDUP_WSGI_ACCESS_LOG=off turns it off.
os.environ.setdefault("ROUNDUP_WSGI_ACCESS_LOG", "on")
accesslog = None
errorlog = "-"
loglevel = "info"


# Readiness: each worker answers /-/ready with 503 ("stopping") once it is
# told to stop, so a load balancer's health check takes it out while it
# finishes its requests (graceful_timeout above).
def post_worker_init(worker):
    """Chain roundup_wsgi.health.begin_stop before gunicorn's SIGTERM handler."""
    import signal

    from roundup_wsgi.health import begin_stop

    previous = signal.getsignal(signal.SIGTERM)

    def stop(signum, frame):
        begin_stop()
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, stop)


def worker_int(worker):
    """SIGINT/SIGQUIT to a worker: stopping as well."""
    from roundup_wsgi.health import begin_stop

    begin_stop()


# Metrics (ROUNDUP_WSGI_METRICS=on): with several workers set
# PROMETHEUS_MULTIPROC_DIR to an empty directory the service user can write
# (e.g. /run/roundup-wsgi/metrics); a dead worker's gauges are dropped here.
def child_exit(server, worker):
    """Drop the live gauges of a worker that exited."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
