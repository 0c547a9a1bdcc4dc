#!/usr/bin/env bash
# `make demo`: deploy the demo application (v1, color blue) on this machine with plain Compose,
# on the testbed's images pinned by digest. This stands in until the release playbook lands.
#
#   demo.sh up      networks, <app>-data (PostgreSQL), schema 0001, <app>-blue v1 on 127.0.0.1:PORT
#   demo.sh down    remove the demo's projects and networks (the database volume is kept)
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
APP=${DEMO_APP:-shop}
PORT=${DEMO_PORT:-8080}
VERSION=${DEMO_VERSION:-v1}
STATE=${DEMO_STATE_DIR:-/var/lib/switchyard-testbed/demo}
SUMMARY=${TESTBED_DIR:-/var/lib/switchyard-testbed}/summary.json
APP_UID=10001  # the demo image's user (Dockerfile): it must be able to read the secret

export APP_NAME=$APP DEMO_SECRETS_DIR=$STATE/secrets DEMO_PORT=$PORT

log() { printf '[demo] %s\n' "$*" >&2; }
die() { printf '[demo] ERROR: %s\n' "$*" >&2; exit 1; }

data() { docker compose -p "$APP-data" -f "$HERE/compose.data.yaml" "$@"; }
blue() { docker compose -p "$APP-blue" -f "$HERE/compose.base.yaml" -f "$HERE/compose.local.yaml" "$@"; }

pinned() {
  [[ -s $SUMMARY ]] || die "$SUMMARY is missing: run 'make testbed'"
  python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["images"][sys.argv[2]])' \
    "$SUMMARY" "$1"
}

ensure_secret() {
  install -d -m 0700 "$DEMO_SECRETS_DIR"
  if [[ ! -s $DEMO_SECRETS_DIR/db_password ]]; then
    log "generating the database password in $DEMO_SECRETS_DIR/db_password"
    (umask 077 && python3 -c 'import secrets; print(secrets.token_urlsafe(24))' >"$DEMO_SECRETS_DIR/db_password")
  fi
  chown "0:$APP_UID" "$DEMO_SECRETS_DIR/db_password"
  chmod 0440 "$DEMO_SECRETS_DIR/db_password"
}

ensure_network() {
  local name=$1
  shift
  docker network inspect "$name" >/dev/null 2>&1 || docker network create "$@" "$name" >/dev/null
}

up() {
  ensure_secret
  ensure_network "${APP}_public"
  ensure_network "${APP}_edge" --internal
  ensure_network "${APP}_data" --internal
  DEMO_DB_IMAGE=$(pinned "127.0.0.1:5000/switchyard/postgres:15")
  export DEMO_DB_IMAGE
  log "starting $APP-data (PostgreSQL)"
  data up --detach --wait --wait-timeout 120
  if [[ $(data exec -T db psql -U demo -d demo -Atc "select to_regclass('items') is not null") != t ]]; then
    log "applying migrations/0001_create_items/expand.sql"
    data exec -T db psql -X -q -v ON_ERROR_STOP=1 -U demo -d demo -f - \
      <"$HERE/migrations/0001_create_items/expand.sql"
  fi
  DEMO_APP_IMAGE=$(pinned "127.0.0.1:5000/switchyard/demo-app:$VERSION")
  export DEMO_APP_IMAGE
  log "starting $APP-blue with $DEMO_APP_IMAGE"
  blue up --detach --wait --wait-timeout 60
  log "the demo answers on http://127.0.0.1:$PORT/ :"
  curl -fsS "http://127.0.0.1:$PORT/"
  echo
}

down() {
  blue down --timeout 10 || true
  DEMO_DB_IMAGE=unused data down --timeout 30 || true
  local net
  for net in public edge data; do
    docker network rm "${APP}_$net" >/dev/null 2>&1 || true
  done
}

case ${1:-up} in
  up) up ;;
  down) down ;;
  *) die "usage: $0 up|down" ;;
esac
