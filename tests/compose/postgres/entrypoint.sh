#!/bin/bash
# The official postgres image's start, in short: on an empty data directory, initdb with
# POSTGRES_USER / POSTGRES_PASSWORD, a database named after the user, the init scripts run on a
# server that listens on no TCP port (so pg_isready -h 127.0.0.1 says no until it is done); then the
# server, listening everywhere, with password authentication over TCP.
set -euo pipefail
: "${POSTGRES_USER:=postgres}" "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    password="$(mktemp)"
    printf '%s' "$POSTGRES_PASSWORD" > "$password"
    initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$password" --auth-local=trust --auth-host=scram-sha-256 -E UTF8 >/dev/null
    rm -f "$password"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -k /tmp" -w start >/dev/null
    if [ "$POSTGRES_USER" != postgres ]; then
        psql -h /tmp -U "$POSTGRES_USER" -d postgres -v ON_ERROR_STOP=1 -q -c "CREATE DATABASE \"$POSTGRES_USER\""
    fi
    for script in /docker-entrypoint-initdb.d/*.sql; do
        [ -e "$script" ] || continue
        echo "running $script"
        psql -h /tmp -U "$POSTGRES_USER" -d "$POSTGRES_USER" -v ON_ERROR_STOP=1 -q -f "$script"
    done
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    echo "database initialized"
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' -k /tmp
