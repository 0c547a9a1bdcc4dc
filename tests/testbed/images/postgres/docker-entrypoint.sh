#!/usr/bin/env bash
# Initialises the cluster on first start, then runs PostgreSQL as the postgres user.
# The password comes from POSTGRES_PASSWORD_FILE (or POSTGRES_PASSWORD) and is never printed.
set -Eeuo pipefail

if [[ ${1:-} != postgres ]]; then
  exec "$@"
fi

if [[ $(id -u) == 0 ]]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 700 "$PGDATA"
  chmod 2775 /var/run/postgresql
  # The secret file may be readable by root only: hand its content to the postgres user through
  # a private file that initdb reads and that is removed right after.
  if [[ ! -s $PGDATA/PG_VERSION ]]; then
    pwfile=$(mktemp -p /var/run/postgresql .pw.XXXXXX)
    if [[ -n ${POSTGRES_PASSWORD_FILE:-} ]]; then
      [[ -r $POSTGRES_PASSWORD_FILE ]] || { echo "POSTGRES_PASSWORD_FILE=$POSTGRES_PASSWORD_FILE is not readable" >&2; exit 1; }
      head -n 1 "$POSTGRES_PASSWORD_FILE" | tr -d '\r\n' >"$pwfile"
    elif [[ -n ${POSTGRES_PASSWORD:-} ]]; then
      printf '%s' "$POSTGRES_PASSWORD" >"$pwfile"
    else
      echo "set POSTGRES_PASSWORD_FILE (a secret file) or POSTGRES_PASSWORD" >&2
      exit 1
    fi
    [[ -s $pwfile ]] || { echo "the database password is empty" >&2; exit 1; }
    chown postgres:postgres "$pwfile"
    chmod 600 "$pwfile"
    export SWITCHYARD_PWFILE=$pwfile
  fi
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

if [[ ! -s $PGDATA/PG_VERSION ]]; then
  db=${POSTGRES_DB:-$POSTGRES_USER}
  echo "initialising the cluster in $PGDATA (user $POSTGRES_USER, database $db)"
  initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$SWITCHYARD_PWFILE" \
    --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  rm -f "$SWITCHYARD_PWFILE"
  unset SWITCHYARD_PWFILE
  echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  if [[ $db != postgres ]]; then
    # A private server (no TCP) creates the database; the healthcheck, which uses TCP, stays red.
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
    psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d postgres -q \
      -c "CREATE DATABASE \"$db\" OWNER \"$POSTGRES_USER\""
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  fi
fi

exec "$@" -D "$PGDATA"
