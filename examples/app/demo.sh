#!/usr/bin/env bash
# `make demo`: a real release of the demo application on this machine, with the collection's
# playbooks and the local inventory (inventories/local):
#   1. release v1 (the first release: blue, 100 %) unless something is already live,
#   2. release v2 with canary steps judged by the gate, under steady traffic (traffic.py),
#   3. print the status and where traffic goes.
#
#   demo.sh up      the above
#   demo.sh down    remove the demo's projects, networks and ledger (keeps the database volume
#                   and its password)
# DEMO_APP, DEMO_PORT and DEMO_STATE_DIR change the app name, the public port and the state directory;
# SWITCHYARD_LB_KIND (haproxy, nginx or traefik) the load balancer in front; DEMO_EXTRA_VARS (JSON) is given
# to every playbook as extra vars (shorter windows, say).
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
APP=${DEMO_APP:-shop}
PORT=${DEMO_PORT:-8080}
STATE=${DEMO_STATE_DIR:-/var/lib/switchyard/$APP}
FIRST=${DEMO_FIRST_VERSION:-v1}
NEXT=${DEMO_NEXT_VERSION:-v2}
KIND=${SWITCHYARD_LB_KIND:-haproxy}
# The checkout's virtual environment (make venv) has ansible-core and what the modules need.
PLAYBOOK=${ANSIBLE_PLAYBOOK:-$ROOT/.venv/bin/ansible-playbook}
[[ -x $PLAYBOOK ]] || PLAYBOOK=ansible-playbook
export ANSIBLE_CONFIG=${ANSIBLE_CONFIG:-$ROOT/ansible.cfg}

log() { printf '\n[demo] %s\n' "$*" >&2; }

play() {
  local playbook=$1
  shift
  "$PLAYBOOK" -i "$ROOT/inventories/local" "$ROOT/playbooks/$playbook" \
    -e "switchyard_app=$APP" -e "switchyard_lb_public_port=$PORT" -e "switchyard_state_dir=$STATE" \
    -e "switchyard_lb_kind=$KIND" ${DEMO_EXTRA_VARS:+-e "$DEMO_EXTRA_VARS"} "$@"
}

# The live color in the release ledger, or nothing.
live_color() {
  [[ -s $STATE/ledger.json ]] || return 0
  python3 -c 'import json, sys; print(json.load(open(sys.argv[1])).get("live") or "")' "$STATE/ledger.json"
}

up() {
  if [[ -z $(live_color) ]]; then
    log "first release of $APP: $FIRST on blue, 100 % (nothing is live yet)"
    play release.yml -e "switchyard_version=$FIRST"
  fi
  log "releasing $NEXT with canary steps under steady traffic, $KIND in front (python3 traffic.py, 40 requests/s)"
  python3 "$HERE/traffic.py" --url "http://127.0.0.1:$PORT/" --rate 40 --duration 600 &
  local traffic=$!
  trap 'kill "$traffic" 2>/dev/null || true' EXIT
  play release.yml -e "switchyard_version=$NEXT"
  kill "$traffic" 2>/dev/null || true
  wait "$traffic" || true
  trap - EXIT
  log "status"
  play status.yml
  log "where traffic goes now (5 requests to http://127.0.0.1:$PORT/):"
  for _i in 1 2 3 4 5; do curl -fsS "http://127.0.0.1:$PORT/"; echo; done
  log "next: playbooks/rollback.yml (back to the previous color), playbooks/contract.yml (after the rollback window)"
}

down() {
  local project
  for project in "$APP-blue" "$APP-green" "$APP-lb" "$APP-data"; do
    docker compose -p "$project" down --timeout 15 >/dev/null 2>&1 || true
  done
  for net in public edge data; do
    docker network rm "${APP}_$net" >/dev/null 2>&1 || true
  done
  if [[ -d $STATE ]]; then
    # The ledger describes containers that are gone now; the secrets go with the database volume.
    find "$STATE" -mindepth 1 -maxdepth 1 ! -name secrets -exec rm -rf {} +
  fi
}

case ${1:-up} in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
