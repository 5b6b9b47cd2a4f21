#!/opt/roundup-wsgi/bin/python
"""Entry point of the roundup-wsgi container image (docs/container.rst).

``serve`` (the default): create the tracker on first start if its volume is
empty, then replace this process by gunicorn with deploy/gunicorn.conf.py
(gunicorn is PID 1, so SIGTERM from ``podman stop`` drains it).
``init``: only create the tracker.  Any other command runs as given
(``roundup-admin -i /srv/roundup/tracker list user``).

Everything comes from the environment:

==============================  ===========================================
ROUNDUP_TRACKER_HOME            the tracker home (code and config.ini)
ROUNDUP_DATA                    database and attachments ([main] database
                                is ``$ROUNDUP_DATA/db`` for a new tracker)
ROUNDUP_BIND                    gunicorn's bind address (0.0.0.0:8080)
ROUNDUP_WORKERS                 gunicorn workers (default 2 x CPUs + 1);
                                WEB_CONCURRENCY is read too
ROUNDUP_WSGI_*                  roundup_wsgi.app's options (docs/configuration.rst)
ROUNDUP_INIT_TEMPLATE, _BACKEND, _WEB, _DB_HOST, _DB_PORT, _DB_NAME,
_DB_USER                        ``roundup-wsgi init`` options, first start only
ROUNDUP_ADMIN_PASSWORD_FILE     admin password for a new tracker
ROUNDUP_DB_PASSWORD_FILE        PostgreSQL password ([rdbms] password)
ROUNDUP_SECRET_KEY_FILE         [web] secret_key
ROUNDUP_JWT_SECRET_FILE         [web] jwt_secret
==============================  ===========================================

The secret files default to ``/run/secrets/roundup_admin_password``,
``roundup_db_password``, ``roundup_secret_key`` and ``roundup_jwt_secret``;
the last three go into a new tracker's config.ini as Roundup's own
``file://`` values, so the secrets never enter the volume.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys

PROG = "roundup-wsgi-entrypoint"
SECRETS = "/run/secrets"
GUNICORN_CONF = "/etc/roundup-wsgi/gunicorn.conf.py"
#: A tracker home has these (what ``roundup-admin install`` writes).
TRACKER_FILES = ("config.ini", "schema.py")
#: Roundup options set to ``file://`` when the secret file exists at init.
SECRET_OPTIONS = {
    "ROUNDUP_SECRET_KEY_FILE": ("roundup_secret_key", "WEB_SECRET_KEY"),
    "ROUNDUP_JWT_SECRET_FILE": ("roundup_jwt_secret", "WEB_JWT_SECRET"),
}


class RefusedError(Exception):
    """A one-line reason not to start."""


def secret_file(variable: str, default_name: str) -> str | None:
    """The secret file named by *variable* (or ``/run/secrets/NAME``) if it exists."""
    path = os.environ.get(variable) or os.path.join(SECRETS, default_name)
    return path if os.path.isfile(path) else None


def is_tracker(home: str) -> bool:
    """True when *home* holds a tracker's config.ini and schema.py."""
    return all(os.path.isfile(os.path.join(home, name)) for name in TRACKER_FILES)


def ensure_tracker() -> str:
    """Return the tracker home, creating the tracker there if it is empty.

    Replicas starting together on the same volumes take turns with a lock
    file in the data volume; the first creates the tracker, the others find it.

    :raises RefusedError: the home holds something else than a tracker, or is
        empty and read-only, or ``roundup-wsgi init`` failed.
    """
    home = os.environ.get("ROUNDUP_TRACKER_HOME", "/srv/roundup/tracker")
    data = os.environ.get("ROUNDUP_DATA", "/srv/roundup/data")
    if is_tracker(home):
        return home
    if not os.path.isdir(home):
        raise RefusedError(f"{home}: no such directory; mount a volume there")
    try:
        lock = open(os.path.join(data, ".roundup-wsgi-init.lock"), "w")  # noqa: SIM115
    except OSError as exc:
        raise RefusedError(
            f"{data}: cannot write the data volume ({exc.strerror}); run as "
            "--user UID:0 or give the volume to the user (podman: -v NAME:PATH:U)"
        ) from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_tracker(home):  # another replica made it meanwhile
            return home
        try:
            entries = os.listdir(home)
        except OSError as exc:
            raise RefusedError(
                f"{home}: cannot read it ({exc.strerror}); give the volume to "
                "the container's user"
            ) from None
        if entries:
            raise RefusedError(
                f"{home} holds files but no tracker (no config.ini and schema.py): "
                "mount an empty volume (a new tracker is made) or a tracker home"
            )
        if not os.access(home, os.W_OK):
            raise RefusedError(
                f"{home} is empty and not writable: mount it writable for the "
                "first start, which creates the tracker"
            )
        create_tracker(home, os.path.join(data, "db"))
    return home


def create_tracker(home: str, database: str) -> None:
    """Run ``roundup-wsgi init`` from the ``ROUNDUP_INIT_*`` variables, then
    point config.ini's secrets at their files (Roundup's ``file://``).

    :raises RefusedError: init failed (its one-line error is already on stderr).
    """
    env = os.environ
    argv = ["roundup-wsgi", "init", home, "--database", database]
    argv += ["--template", env.get("ROUNDUP_INIT_TEMPLATE", "classic")]
    argv += ["--backend", env.get("ROUNDUP_INIT_BACKEND", "sqlite")]
    argv += ["--web", env.get("ROUNDUP_INIT_WEB", "http://127.0.0.1:8080/")]
    for option in ("host", "port", "name", "user"):
        value = env.get(f"ROUNDUP_INIT_DB_{option.upper()}")
        if value:
            argv += [f"--db-{option}", value]
    password = secret_file("ROUNDUP_DB_PASSWORD_FILE", "roundup_db_password")
    if password:
        argv += ["--db-password", "file://" + os.path.abspath(password)]
    admin = secret_file("ROUNDUP_ADMIN_PASSWORD_FILE", "roundup_admin_password")
    if admin:
        argv += ["--admin-password-file", admin]
    if subprocess.run(argv, check=False).returncode != 0:
        raise RefusedError(f"no tracker was created in {home} (see the error above)")
    secrets = {
        option: "file://" + os.path.abspath(path)
        for variable, (name, option) in SECRET_OPTIONS.items()
        if (path := secret_file(variable, name))
    }
    if secrets:
        from roundup.configuration import CoreConfig

        config = CoreConfig(home)
        for option, value in secrets.items():
            config[option] = value
        config.save()


def workers() -> str:
    """gunicorn's worker count: the environment's, else 2 x CPUs + 1 (gunicorn's
    recommendation)."""
    for variable in ("ROUNDUP_WORKERS", "WEB_CONCURRENCY"):
        if os.environ.get(variable):
            return os.environ[variable]
    return str(2 * len(os.sched_getaffinity(0)) + 1)


def serve(extra: list[str]) -> None:
    """Create the tracker if needed, then exec gunicorn (never returns)."""
    ensure_tracker()
    metrics = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if metrics:  # emptied at each start, as prometheus_client requires
        shutil.rmtree(metrics, ignore_errors=True)
        os.makedirs(metrics, exist_ok=True)
    argv = ["gunicorn", "--config", GUNICORN_CONF]
    argv += ["--bind", os.environ.get("ROUNDUP_BIND", "0.0.0.0:8080")]
    argv += ["--workers", workers(), "--worker-tmp-dir", "/dev/shm"]
    os.execvp(argv[0], argv + extra)


def main(argv: list[str]) -> int:
    """Run the command *argv* (``serve`` when empty); return the exit status."""
    command, rest = (argv[0], argv[1:]) if argv else ("serve", [])
    os.umask(0o002)  # files stay writable for group 0 (any --user UID:0)
    try:
        if command == "serve":
            serve(rest)
        elif command == "init":
            print(f"{PROG}: tracker at {ensure_tracker()}", flush=True)
            return 0
        else:
            os.execvp(command, [command, *rest])
    except RefusedError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr, flush=True)
        return 2
    return 0  # not reached: exec


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
