#!/usr/bin/env bash
# Runs docker-compose.yml and the Dockerfile for real on a Debian 12 machine without Docker
# or a container registry, then scripts/compose-smoke.sh against the stack: podman is the
# engine, Debian's docker-compose v1 the client (through podman's API socket), and the two
# base images are stand-ins made locally with debootstrap. Run as root from the repository
# root; about 3 minutes. Not part of `npm test`: slow, and it defines a domain on the
# machine's libvirtd (and undefines it).
#
#   sudo bash scripts/compose-here.sh
#
#   WORK=/tmp/compose-here  its files (removed at the end unless a step failed)
#   PORT=18081              the api's host port (VIRTGATE_PORT of the compose file)
#   PROJECT=vghere          the compose project: its containers, network, volume, images
#
# Ends with "compose-smoke: N passed, N failed" and exits non-zero on any failure. Cleans up
# after itself: the stack and its volume, the images it built or imported, podman's
# service, its files.
set -euo pipefail
REPO=$(pwd)
WORK=${WORK:-/tmp/compose-here}
PORT=${PORT:-18081}
PROJECT=${PROJECT:-vghere}
NODE_IMAGE=docker.io/library/node:20-bookworm-slim
REDIS_IMAGE=docker.io/library/redis:7-bookworm
[ -f "$REPO/docker-compose.yml" ] && [ -f "$REPO/scripts/compose-smoke.sh" ] || {
  echo 'compose-here: run it from the repository root' >&2
  exit 2
}
[ "$(id -u)" = 0 ] || {
  echo 'compose-here: run it as root (podman, debootstrap)' >&2
  exit 2
}
if ss -Hltn "sport = :$PORT" | grep -q .; then
  echo "compose-here: port $PORT is in use: choose another with PORT=" >&2
  exit 2
fi
mkdir -p "$WORK"
t0=$(date +%s)
step() { echo "== [$(($(date +%s) - t0))s] $*"; }

step "packages"
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
  podman runc netavark aardvark-dns iptables docker-compose debootstrap >"$WORK/apt.log" 2>&1

# podman 4.3 on this machine: crun refuses hybrid cgroups (hugetlb on v2), no
# CAP_SYS_RESOURCE so rlimits may not exceed the current hard ones, no systemd.
cat >"$WORK/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$(ulimit -Hn):$(ulimit -Hn)", "nproc=32768:32768"]
[network]
network_backend = "netavark"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
export CONTAINERS_CONF=$WORK/containers.conf
export DOCKER_HOST=unix://$WORK/podman.sock
export COMPOSE_PROJECT_NAME=$PROJECT
export VIRTGATE_PORT=$PORT
# The group that may write libvirtd's socket: the containers' non-root user gets it.
LIBVIRT_SOCKET_GID=$(stat -c %g /var/run/libvirt/libvirt-sock)
export LIBVIRT_SOCKET_GID
# Never printed; the smoke gets it from the environment, as the stack does.
VIRTGATE_ADMIN_TOKEN=${VIRTGATE_ADMIN_TOKEN:-$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')}
export VIRTGATE_ADMIN_TOKEN

# The compose file as it is; the override only says what this machine needs: its libvirtd
# is shared with other gateways (tests), whose block jobs this worker must not adopt.
cat >"$WORK/override.yml" <<'EOF'
services:
  worker:
    environment:
      BLOCK_JOB_ADOPT: 'false'
EOF
COMPOSE=(docker-compose -p "$PROJECT" --project-directory "$REPO" -f "$REPO/docker-compose.yml" -f "$WORK/override.yml")

imported=()
ok=0
cleanup() {
  set +e
  step "cleanup"
  "${COMPOSE[@]}" down -v -t 10 >"$WORK/down.log" 2>&1
  [ -f "$WORK/health.pid" ] && kill "$(cat "$WORK/health.pid")"
  [ -f "$WORK/service.pid" ] && kill "$(cat "$WORK/service.pid")"
  podman rmi -f "${PROJECT}_api" "${PROJECT}_worker" "${imported[@]}" >/dev/null 2>&1
  podman image prune -f >/dev/null 2>&1
  rm -rf "$WORK"/rootfs-*
  if [ "$ok" = 1 ]; then rm -rf "$WORK"; else echo "compose-here: logs kept in $WORK" >&2; fi
  step "done"
}
trap cleanup EXIT

# import <image> <rootfs> <podman import --change…>: a stand-in, unless the image is there
# already (a real one is used as it is, and left in place).
import() {
  local image=$1 rootfs=$2
  shift 2
  if podman image exists "$image"; then
    echo "   $image is here already: used as it is"
    return
  fi
  tar -C "$rootfs" -c . | podman import -q "$@" - "$image" >/dev/null
  imported+=("$image")
}

step "base rootfs (debootstrap minbase)"
debootstrap --variant=minbase bookworm "$WORK/rootfs-base" >"$WORK/debootstrap.log" 2>&1
rm -f "$WORK"/rootfs-base/var/cache/apt/archives/*.deb

step "stand-in node:20-bookworm-slim (this machine's node + npm in /usr/local)"
N=$WORK/rootfs-node
cp -a "$WORK/rootfs-base" "$N"
install -m755 "$(command -v node)" "$N/usr/local/bin/node"
mkdir -p "$N/usr/local/lib/node_modules" "$N/usr/local/etc"
cp -a "$(dirname "$(readlink -f "$(command -v npm)")")/.." "$N/usr/local/lib/node_modules/npm"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$N/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$N/usr/local/bin/npx"
# npm in the build trusts the system's CA bundle (needed where TLS is re-signed by a local CA)
mkdir -p "$N/etc/ssl/certs" && cp /etc/ssl/certs/ca-certificates.crt "$N/etc/ssl/certs/ca-certificates.crt"
echo 'cafile=/etc/ssl/certs/ca-certificates.crt' >"$N/usr/local/etc/npmrc"
chroot "$N" sh -c 'groupadd -g 1000 node && useradd -u 1000 -g node -m -s /bin/bash node'
import "$NODE_IMAGE" "$N" --change 'CMD ["node"]'

step "stand-in redis:7-bookworm (Debian's redis-server 7.0)"
R=$WORK/rootfs-redis
cp -a "$WORK/rootfs-base" "$R"
printf '#!/bin/sh\nexit 101\n' >"$R/usr/sbin/policy-rc.d"
chmod 755 "$R/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$R/etc/resolv.conf"
chroot "$R" sh -c 'apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends redis-server' >"$WORK/redis.log" 2>&1
rm -rf "$R/usr/sbin/policy-rc.d" "$R/etc/resolv.conf" "$R"/var/lib/apt/lists/* "$R"/var/cache/apt/archives/*.deb
# the official image is built with protected-mode off; Debian's is not
printf '#!/bin/sh\nexec /usr/bin/redis-server "$@" --protected-mode no\n' >"$R/usr/local/bin/redis-server"
chmod 755 "$R/usr/local/bin/redis-server"
import "$REDIS_IMAGE" "$R" --change 'WORKDIR /data' --change 'CMD ["redis-server"]'

step "podman API socket + healthcheck runner (no systemd timers here)"
podman system service --time=0 "$DOCKER_HOST" >"$WORK/service.log" 2>&1 &
echo $! >"$WORK/service.pid"
(while sleep 2; do for c in $(podman ps -q --filter health=starting --filter health=unhealthy); do
  podman healthcheck run "$c" >/dev/null 2>&1
done; done) &
echo $! >"$WORK/health.pid"
for _ in $(seq 30); do [ -S "$WORK/podman.sock" ] && break; sleep 0.5; done

step "docker-compose up --build (project $PROJECT, port $PORT)"
"${COMPOSE[@]}" up -d --build >"$WORK/up.log" 2>&1 || {
  tail -30 "$WORK/up.log"
  exit 1
}
"${COMPOSE[@]}" ps

step "smoke"
COMPOSE="${COMPOSE[*]}" VIRTGATE_URL="http://127.0.0.1:$PORT" BUILD_LOG="$WORK/up.log" \
  bash "$REPO/scripts/compose-smoke.sh"
ok=1
