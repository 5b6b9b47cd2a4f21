#!/bin/sh
# The official postgres image's first-start contract, in short: an empty
# $PGDATA gets a cluster owned by $POSTGRES_USER with the password of
# $POSTGRES_PASSWORD_FILE and the database $POSTGRES_DB; clients from the
# network log in with scram-sha-256.
set -eu
if [ "${1:-}" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
    user=${POSTGRES_USER:-postgres}
    initdb --username="$user" --pwfile="$POSTGRES_PASSWORD_FILE" \
        --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 \
        --locale=C.UTF-8 -D "$PGDATA" >/dev/null
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    pg_ctl -D "$PGDATA" -w -o "-c listen_addresses='' -c unix_socket_directories=/tmp" start >/dev/null
    if [ "${POSTGRES_DB:-$user}" != postgres ]; then
        createdb -h /tmp -U "$user" "${POSTGRES_DB:-$user}"
    fi
    pg_ctl -D "$PGDATA" -w stop >/dev/null
    echo "postgres-entrypoint: created the cluster in $PGDATA"
fi
exec "$@"
