# shellcheck shell=bash
# The fleet testbed, sourced by testbed.sh: several Docker hosts on this machine, reached over SSH like production.
#
# Each host hN (1..$FLEET_HOSTS) is a network namespace syfleet-hN with:
#   - an address 10.77.0.(10+N) on a veth whose other end is on the bridge syfleet0 (10.77.0.1, this machine);
#   - its own dockerd (nsenter --net: `ip netns exec` remounts /sys and hides the cgroups), with its own data root,
#     exec root, socket and pid file under $FLEET_DIR/hN, and --live-restore like the main engine;
#   - 127.0.0.1:5000 forwarded to the local registry (socat over a unix socket), so images keep their references
#     and digests, and the registry stays on this machine's loopback;
#   - an sshd on 10.77.0.(10+N):22 whose sessions get DOCKER_HOST set to that engine (key authentication only).
# One PostgreSQL serves every host (the main engine's container syfleet-db, published on 10.77.0.1:5432), as a
# fleet shares one database. The hosts share this machine's filesystem: the inventory (inventories/fleet) gives each
# its own state directory.
FLEET_HOSTS=${TESTBED_FLEET_HOSTS:-3}
FLEET_DIR=$TESTBED_DIR/fleet
FLEET_BRIDGE=syfleet0
FLEET_GATEWAY=10.77.0.1
FLEET_DB=syfleet-db
FLEET_DB_IMAGE=$REGISTRY/switchyard/postgres:15
# The images each host's engine holds before a test runs (a release pulls what it lacks; pulling here keeps the
# tests' timings about the release).
FLEET_IMAGES=("$REGISTRY/switchyard/haproxy:2.6" "$REGISTRY/switchyard/demo-app:v1" "$REGISTRY/switchyard/demo-app:v2" "$REGISTRY/switchyard/demo-app:v3")

fleet_address() { echo "10.77.0.$((10 + $1))"; }
fleet_docker() { local n=$1; shift; DOCKER_HOST="unix://$FLEET_DIR/h$n/docker.sock" docker "$@"; }

ensure_fleet_network() {
  if ! ip link show "$FLEET_BRIDGE" >/dev/null 2>&1; then
    ip link add "$FLEET_BRIDGE" type bridge
  fi
  # Whole outputs compared, not piped into grep -q: under pipefail, grep -q leaving early fails the pipeline (SIGPIPE).
  [[ $(ip addr show dev "$FLEET_BRIDGE") == *"inet $FLEET_GATEWAY/24"* ]] || ip addr add "$FLEET_GATEWAY/24" dev "$FLEET_BRIDGE"
  ip link set "$FLEET_BRIDGE" up
  # Docker loads br_netfilter, so traffic bridged between two hosts meets the FORWARD chain (policy DROP): let the
  # hosts reach each other, as machines on one network do.
  iptables -C DOCKER-USER -i "$FLEET_BRIDGE" -o "$FLEET_BRIDGE" -j ACCEPT 2>/dev/null ||
    iptables -I DOCKER-USER -i "$FLEET_BRIDGE" -o "$FLEET_BRIDGE" -j ACCEPT
}

ensure_fleet_namespace() {
  local n=$1 ns=syfleet-h$1 address
  address=$(fleet_address "$n")
  [[ -e /run/netns/$ns ]] || ip netns add "$ns"
  if ! ip link show "$ns" >/dev/null 2>&1; then
    ip -n "$ns" link del eth0 2>/dev/null || true
    ip link add "$ns" type veth peer name eth0 netns "$ns"
  fi
  ip link set "$ns" master "$FLEET_BRIDGE" up
  [[ $(ip -n "$ns" addr show dev eth0) == *"inet $address/24"* ]] || ip -n "$ns" addr add "$address/24" dev eth0
  ip -n "$ns" link set lo up
  ip -n "$ns" link set eth0 up
  [[ $(ip -n "$ns" route show default) == *"via $FLEET_GATEWAY"* ]] || ip -n "$ns" route replace default via "$FLEET_GATEWAY"
}

# socat, listening: on this machine a unix socket to the registry; in each namespace 127.0.0.1:5000 to that socket.
ensure_fleet_registry_forward() {
  local n=$1 dir=$FLEET_DIR/h$1
  if ! pid_alive "$FLEET_DIR/registry-forward.pid" "UNIX-LISTEN:$FLEET_DIR/registry.sock"; then
    nohup socat "UNIX-LISTEN:$FLEET_DIR/registry.sock,fork,unlink-early" "TCP:$REGISTRY" \
      >>"$FLEET_DIR/registry-forward.log" 2>&1 </dev/null &
    echo $! >"$FLEET_DIR/registry-forward.pid"
  fi
  if ! pid_alive "$dir/registry-forward.pid" "UNIX-CONNECT:$FLEET_DIR/registry.sock"; then
    nohup nsenter --net="/run/netns/syfleet-h$n" socat "TCP-LISTEN:${REGISTRY##*:},bind=127.0.0.1,fork,reuseaddr" \
      "UNIX-CONNECT:$FLEET_DIR/registry.sock" >>"$dir/registry-forward.log" 2>&1 </dev/null &
    echo $! >"$dir/registry-forward.pid"
  fi
  wait_for 10 nsenter --net="/run/netns/syfleet-h$n" curl -fsS --max-time 2 "http://$REGISTRY/v2/" ||
    die "host h$n does not reach the registry through 127.0.0.1:${REGISTRY##*:} (log: $dir/registry-forward.log)"
}

# The hosts' resolver, on this machine (10.77.0.1:53): it answers every name NXDOMAIN at once (dnsmasq, no upstream).
# Docker's DNS forwards the names it does not know (a color not created yet) to the engine's --dns; without an answer
# each lookup waited 4 to 16 s (ICMP port unreachable is rate-limited), and HAProxy, which looks its servers up
# through libc at start, opened its sockets that much later.
ensure_fleet_dns() {
  command -v dnsmasq >/dev/null || { log "installing dnsmasq-base (the fleet hosts' resolver)"; apt_install dnsmasq-base; }
  pid_alive "$FLEET_DIR/dns.pid" "--listen-address=$FLEET_GATEWAY" && return 0
  nohup dnsmasq --keep-in-foreground --no-resolv --no-hosts --bind-interfaces "--listen-address=$FLEET_GATEWAY" \
    --port=53 --address=/#/ >>"$FLEET_DIR/dns.log" 2>&1 </dev/null &
  echo $! >"$FLEET_DIR/dns.pid"
  wait_for 10 bash -c "exec 3<>/dev/udp/$FLEET_GATEWAY/53" || die "the fleet's resolver did not start (log: $FLEET_DIR/dns.log)"
}

fleet_engine_up() { fleet_docker "$1" info >/dev/null 2>&1; }

ensure_fleet_engine() {
  local n=$1 dir=$FLEET_DIR/h$1
  fleet_engine_up "$n" && return 0
  mkdir -p "$dir/docker" "$dir/exec"
  # Pid files a killed engine left behind (its own, its containerd's), when they name no such daemon any more.
  local f
  for f in "$dir/dockerd.pid.dockerd" "$dir/exec/containerd/containerd.pid"; do
    [[ -s $f ]] || continue
    grep -qxE 'dockerd|containerd' "/proc/$(<"$f")/comm" 2>/dev/null || rm -f "$f"
  done
  log "starting host h$n's dockerd in syfleet-h$n (log: $dir/dockerd.log)"
  # --dns: the hosts' resolver (ensure_fleet_dns); this machine's own is out of the namespaces' reach.
  nohup nsenter --net="/run/netns/syfleet-h$n" dockerd --data-root "$dir/docker" --exec-root "$dir/exec" \
    -H "unix://$dir/docker.sock" --pidfile "$dir/dockerd.pid.dockerd" --bip "172.31.$n.1/24" --dns "$FLEET_GATEWAY" \
    --live-restore --userland-proxy=false >>"$dir/dockerd.log" 2>&1 </dev/null &
  echo $! >"$dir/dockerd.pid"
  if ! wait_for 60 fleet_engine_up "$n"; then
    tail -n 20 "$dir/dockerd.log" >&2
    die "host h$n's dockerd did not answer within 60 s (log: $dir/dockerd.log)"
  fi
}

ensure_fleet_images() {
  local n=$1 ref
  for ref in "${FLEET_IMAGES[@]}"; do
    fleet_docker "$n" pull -q "$ref" >/dev/null || die "host h$n could not pull $ref"
  done
}

ensure_fleet_sshd() {
  local n=$1 dir=$FLEET_DIR/h$1
  [[ -s $dir/host_key ]] || ssh-keygen -q -t ed25519 -N '' -C "syfleet-h$n" -f "$dir/host_key"
  cat >"$dir/sshd_config" <<EOF
# Written by tests/testbed/fleet.sh: host h$n of the fleet testbed.
ListenAddress $(fleet_address "$n")
Port 22
HostKey $dir/host_key
AuthorizedKeysFile $FLEET_DIR/ssh/authorized_keys
PidFile $dir/sshd.pid
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
# DOCKER_HOST: this host's engine, as /var/run/docker.sock would be on a real host.
# SHLVL=1: the session's bash starts nested, so it skips root's ~/.bashrc, which on this machine runs pyenv's init
# (~100 processes, ~0.1 s of CPU on every task). A Docker host in production has its own profile, not this one's.
SetEnv DOCKER_HOST=unix://$dir/docker.sock SHLVL=1
Subsystem sftp /usr/lib/openssh/sftp-server
EOF
  if pid_alive "$dir/sshd.pid" "$dir/sshd_config"; then
    kill -HUP "$(<"$dir/sshd.pid")"
  else
    mkdir -p /run/sshd
    nsenter --net="/run/netns/syfleet-h$n" /usr/sbin/sshd -f "$dir/sshd_config" -E "$dir/sshd.log" ||
      die "host h$n's sshd did not start (log: $dir/sshd.log)"
  fi
  wait_for 10 bash -c "exec 3<>/dev/tcp/$(fleet_address "$n")/22" || die "host h$n's sshd does not listen on $(fleet_address "$n"):22"
}

fleet_db_up() {
  docker exec "$FLEET_DB" pg_isready -q -h 127.0.0.1 -U demo >/dev/null 2>&1 &&
    bash -c "exec 3<>/dev/tcp/$FLEET_GATEWAY/5432" 2>/dev/null
}

# The fleet's database (user demo, database demo; tests create a database of their own), its password in
# $FLEET_DIR/db_password (the inventory gives it to the hosts as the db_password secret).
ensure_fleet_db() {
  [[ -s $FLEET_DIR/db_password ]] || { (umask 077 && head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$FLEET_DIR/db_password"); }
  fleet_db_up && return 0
  if ! docker container inspect "$FLEET_DB" >/dev/null 2>&1; then
    mkdir -p "$FLEET_DIR/db-secrets"
    install -m 0444 "$FLEET_DIR/db_password" "$FLEET_DIR/db-secrets/db_password"
    log "starting the fleet's PostgreSQL ($FLEET_DB on $FLEET_GATEWAY:5432)"
    docker run -d --name "$FLEET_DB" --restart unless-stopped -p "$FLEET_GATEWAY:5432:5432" \
      -e POSTGRES_USER=demo -e POSTGRES_DB=demo -e POSTGRES_PASSWORD_FILE=/run/secrets/db_password \
      -v "$FLEET_DIR/db-secrets/db_password:/run/secrets/db_password:ro" -v syfleet-pgdata:/var/lib/postgresql/data \
      --shm-size 128m "$FLEET_DB_IMAGE" >/dev/null
  else
    docker start "$FLEET_DB" >/dev/null
  fi
  wait_for 60 fleet_db_up || { docker logs --tail 20 "$FLEET_DB" >&2; die "the fleet's PostgreSQL did not answer on $FLEET_GATEWAY:5432"; }
}

clear_fleet_test_leftovers() {
  local n ids
  for ((n = 1; n <= FLEET_HOSTS; n++)); do
    ids=$(fleet_docker "$n" ps -a --filter "label=com.docker.compose.project" --format '{{.ID}} {{.Label "com.docker.compose.project"}}' |
      awk -v p="$TEST_PROJECT_PREFIX" 'index($2, p) == 1 {print $1}')
    # shellcheck disable=SC2086 # ids are words
    [[ -n $ids ]] && fleet_docker "$n" rm -f $ids >/dev/null
    ids=$(fleet_docker "$n" volume ls -q | grep "^$TEST_PROJECT_PREFIX" || true)
    # shellcheck disable=SC2086
    [[ -n $ids ]] && fleet_docker "$n" volume rm -f $ids >/dev/null
    ids=$(fleet_docker "$n" network ls --format '{{.Name}}' | grep "^$TEST_PROJECT_PREFIX" || true)
    # shellcheck disable=SC2086
    [[ -n $ids ]] && fleet_docker "$n" network rm $ids >/dev/null
  done
  return 0
}

fleet_up() {
  ((FLEET_HOSTS > 0)) || return 0
  command -v socat >/dev/null || { log "installing socat (the fleet hosts' way to the registry)"; apt_install socat; }
  mkdir -p "$FLEET_DIR/ssh"
  [[ -s $FLEET_DIR/ssh/client_key ]] || ssh-keygen -q -t ed25519 -N '' -C switchyard-fleet -f "$FLEET_DIR/ssh/client_key"
  cp "$FLEET_DIR/ssh/client_key.pub" "$FLEET_DIR/ssh/authorized_keys"
  ensure_fleet_network
  ensure_fleet_dns
  ensure_fleet_db
  local n
  for ((n = 1; n <= FLEET_HOSTS; n++)); do
    mkdir -p "$FLEET_DIR/h$n"
    ensure_fleet_namespace "$n"
    ensure_fleet_registry_forward "$n"
    ensure_fleet_engine "$n"
    ensure_fleet_sshd "$n"
  done
  # The pulls of all hosts at once (each engine pulls on its own).
  local -a pids=()
  for ((n = 1; n <= FLEET_HOSTS; n++)); do
    ensure_fleet_images "$n" &
    pids+=($!)
  done
  for n in "${pids[@]}"; do wait "$n" || die "a fleet host could not pull its images"; done
  [[ ${TESTBED_CLEAR_TEST_LEFTOVERS:-1} == 1 ]] && clear_fleet_test_leftovers
  log "fleet: $FLEET_HOSTS host(s) at $(for ((n = 1; n <= FLEET_HOSTS; n++)); do printf '%s ' "$(fleet_address "$n")"; done)(ssh root, key $FLEET_DIR/ssh/client_key), database $FLEET_GATEWAY:5432"
}

# Stop host hN's engine (its containers keep running: --live-restore), or start it again: the fault tests.
fleet_engine() {
  local action=$1 n=$2
  if ! [[ $n =~ ^[0-9]+$ ]] || ((n < 1 || n > FLEET_HOSTS)); then die "no fleet host h$n (1..$FLEET_HOSTS)"; fi
  case $action in
    stop) stop_pid "$FLEET_DIR/h$n/dockerd.pid" "unix://$FLEET_DIR/h$n/docker.sock" "host h$n's dockerd" ;;
    start) ensure_fleet_engine "$n" ;;
    *) die "fleet-engine stop|start N" ;;
  esac
}

fleet_down() {
  local n
  for ((n = 1; n <= FLEET_HOSTS; n++)); do
    stop_pid "$FLEET_DIR/h$n/sshd.pid" sshd "host h$n's sshd"
    stop_pid "$FLEET_DIR/h$n/dockerd.pid" "unix://$FLEET_DIR/h$n/docker.sock" "host h$n's dockerd"
    stop_pid "$FLEET_DIR/h$n/registry-forward.pid" socat "host h$n's registry forwarder"
  done
  stop_pid "$FLEET_DIR/registry-forward.pid" socat "the fleet's registry forwarder"
  stop_pid "$FLEET_DIR/dns.pid" dnsmasq "the fleet's resolver"
}

fleet_summary() {
  local n
  for ((n = 1; n <= FLEET_HOSTS; n++)); do
    printf '  h%s  %s  engine %s\n' "$n" "$(fleet_address "$n")" \
      "$(fleet_docker "$n" version --format '{{.Server.Version}}' 2>/dev/null || echo DOWN)"
  done
}
