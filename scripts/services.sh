#!/usr/bin/env bash
# Local services for virtgate: Redis and libvirtd (QEMU driver, TCG), on loopback only,
# its TLS listener with a test PKI (scripts/services-tls.sh), and a second, session-mode
# libvirtd run as an unprivileged user (two real hosts).
#
#   scripts/services.sh up      install what is missing (Debian packages), start, wait until ready
#   scripts/services.sh status  say what answers; exit 1 if something does not
#   scripts/services.sh down    stop what this script started (never a service it found running)
#
# Idempotent: a service that already answers is left exactly as it is.
# Environment: VIRTGATE_SERVICES_DIR (state, configs, logs; default /var/lib/virtgate-services),
# REDIS_PORT (6379), LIBVIRT_TCP_PORT (16509), LIBVIRT_TLS_PORT (16514).
set -euo pipefail

STATE_DIR="${VIRTGATE_SERVICES_DIR:-/var/lib/virtgate-services}"
REDIS_PORT="${REDIS_PORT:-6379}"
LIBVIRT_TCP_PORT="${LIBVIRT_TCP_PORT:-16509}"
MARK="# managed by virtgate scripts/services.sh"
# shellcheck source=scripts/services-tls.sh
source "$(dirname "${BASH_SOURCE[0]}")/services-tls.sh"

# Debian packages the project needs, and a file or command proving each is installed.
PACKAGES=(redis-server openssl libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 qemu-utils python3-libvirt openssh-server netcat-openbsd)

say() { printf '[services] %s\n' "$*"; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }

need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then exec sudo -E bash "$0" "$@"; fi
    die "must run as root (libvirtd's system instance and package installs need it); sudo is not available"
  fi
}

missing_packages() {
  local p out=()
  for p in "${PACKAGES[@]}"; do
    if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then out+=("$p"); fi
  done
  echo "${out[@]:-}"
}

install_missing() {
  local missing
  missing="$(missing_packages)"
  [ -z "$missing" ] && return 0
  command -v apt-get >/dev/null 2>&1 || die "missing packages ($missing) and no apt-get to install them"
  say "installing from Debian: $missing"
  export DEBIAN_FRONTEND=noninteractive
  # A fresh machine has empty package lists: update once before installing.
  apt-get update -qq >"$STATE_DIR/apt.log" 2>&1 || { tail -20 "$STATE_DIR/apt.log" >&2; die "apt-get update failed"; }
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing >>"$STATE_DIR/apt.log" 2>&1 ||
    { tail -30 "$STATE_DIR/apt.log" >&2; die "apt-get install failed (log: $STATE_DIR/apt.log)"; }
  missing="$(missing_packages)"
  [ -z "$missing" ] || die "still missing after install: $missing"
}

redis_ok() { [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = "PONG" ]; }
libvirt_unix_ok() { virsh -q -c qemu:///system version >/dev/null 2>&1; }
virtlogd_ok() { [ -S /run/libvirt/virtlogd-sock ] && pgrep -x virtlogd >/dev/null 2>&1; }
libvirt_tcp_ok() { virsh -q -c "test+tcp://127.0.0.1:$LIBVIRT_TCP_PORT/default" version >/dev/null 2>&1; }

wait_for() {
  local what="$1" check="$2" log="$3" i
  for i in $(seq 1 100); do
    if "$check"; then return 0; fi
    sleep 0.2
  done
  say "$what did not become ready within 20 s; last lines of $log:" >&2
  tail -20 "$log" >&2 || true
  die "$what is not answering"
}

start_redis() {
  if redis_ok; then say "redis: already answering on 127.0.0.1:$REDIS_PORT, left as is"; return; fi
  mkdir -p "$STATE_DIR/redis"
  # AOF, fsync'd every second: a restart (or a crash of Redis) loses no job; a crash of the
  # machine, at most the last second. noeviction: a full Redis refuses writes, never drops jobs.
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --protected-mode yes \
    --dir "$STATE_DIR/redis" --logfile "$STATE_DIR/redis.log" --pidfile "$STATE_DIR/redis.pid" \
    --save '' --appendonly yes --appendfsync everysec \
    --maxmemory-policy noeviction >/dev/null
  wait_for "redis" redis_ok "$STATE_DIR/redis.log"
  say "redis: started on 127.0.0.1:$REDIS_PORT"
}

# The QEMU driver refuses to initialise unless the user and group it was built with
# (libvirt-qemu) exist, even when qemu.conf says root.
ensure_qemu_identity() {
  getent group libvirt-qemu >/dev/null || groupadd --system libvirt-qemu
  getent passwd libvirt-qemu >/dev/null ||
    useradd --system --no-create-home --home-dir /var/lib/libvirt --shell /usr/sbin/nologin -g libvirt-qemu libvirt-qemu
}

# Without systemd, cgroups, KVM or a security driver: run QEMU as root with no
# namespaces, no cgroups and no relabelling. Written only where there is no qemu.conf yet
# (or ours), so a machine's own configuration is never overwritten.
ensure_qemu_conf() {
  local conf=/etc/libvirt/qemu.conf
  mkdir -p /etc/libvirt
  if [ -f "$conf" ] && ! grep -qF "$MARK" "$conf"; then
    say "libvirtd: keeping the existing $conf (not ours); domains may need it to allow TCG as root"
    return
  fi
  cat >"$conf" <<EOF
$MARK
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
namespaces = [ ]
cgroup_controllers = [ ]
EOF
}

write_libvirtd_conf() {
  cat >"$STATE_DIR/libvirtd.conf" <<EOF
$MARK
# UNIX sockets without authentication (root-owned rw socket), TCP and TLS on loopback only,
# so every transport can be exercised. Never widen listen_addr: auth_tcp is "none".
$(tls_libvirtd_conf)
listen_tcp = 1
listen_addr = "127.0.0.1"
tcp_port = "$LIBVIRT_TCP_PORT"
auth_tcp = "none"
auth_unix_rw = "none"
auth_unix_ro = "none"
unix_sock_group = "root"
unix_sock_ro_perms = "0777"
unix_sock_rw_perms = "0770"
log_outputs = "3:file:$STATE_DIR/libvirtd.log"
EOF
}

start_virtlogd() {
  # QEMU's console output goes through virtlogd: without it no domain starts.
  if virtlogd_ok; then return; fi
  mkdir -p /var/log/libvirt /var/run/libvirt
  virtlogd -d -p "$STATE_DIR/virtlogd.pid"
  wait_for "virtlogd" virtlogd_ok /var/log/libvirt/virtlogd.log
  say "virtlogd: started"
}

start_libvirt() {
  ensure_test_pki
  if libvirt_unix_ok && ! libvirt_tls_ok && libvirtd_is_ours; then
    # Started by an earlier version of this script, before the TLS listener: restart it
    # with today's configuration (running domains go on; QEMU outlives libvirtd).
    say "libvirtd: ours but without its TLS listener; restarting it"
    stop_pidfile libvirtd "$STATE_DIR/libvirtd.pid"
    wait_for "libvirtd to stop" libvirt_unix_down "$STATE_DIR/libvirtd.log"
  fi
  if libvirt_unix_ok; then
    say "libvirtd: already answering on its UNIX socket, left as is"
    libvirt_tcp_ok || say "libvirtd: note: nothing answers on 127.0.0.1:$LIBVIRT_TCP_PORT (TCP tests will fail)"
    libvirt_tls_ok || say "libvirtd: note: nothing answers with TLS on localhost:$LIBVIRT_TLS_PORT (TLS tests will fail)"
    return
  fi
  ensure_qemu_identity
  ensure_qemu_conf
  write_libvirtd_conf
  mkdir -p /var/log/libvirt /var/lib/libvirt/images /var/run/libvirt
  : >"$STATE_DIR/libvirtd.log"
  libvirtd -d -l -f "$STATE_DIR/libvirtd.conf" -p "$STATE_DIR/libvirtd.pid"
  wait_for "libvirtd (UNIX socket)" libvirt_unix_ok "$STATE_DIR/libvirtd.log"
  wait_for "libvirtd (TCP 127.0.0.1:$LIBVIRT_TCP_PORT)" libvirt_tcp_ok "$STATE_DIR/libvirtd.log"
  wait_for "libvirtd (TLS localhost:$LIBVIRT_TLS_PORT)" libvirt_tls_ok "$STATE_DIR/libvirtd.log"
  say "libvirtd: started (UNIX /var/run/libvirt/libvirt-sock, TCP 127.0.0.1:$LIBVIRT_TCP_PORT, TLS localhost:$LIBVIRT_TLS_PORT)"
}

libvirt_unix_down() { ! libvirt_unix_ok; }

# Whether the running libvirtd is the one this script started (its pid file, our config).
libvirtd_is_ours() {
  [ -f "$STATE_DIR/libvirtd.pid" ] && kill -0 "$(cat "$STATE_DIR/libvirtd.pid")" 2>/dev/null &&
    grep -qF "$MARK" "$STATE_DIR/libvirtd.conf" 2>/dev/null
}

# The second QEMU daemon: libvirtd in session mode, run as an unprivileged user of its own
# (virtgate-session) with its runtime, config and images under $SESSION_DIR, so tests and
# benches have two real hosts at once. It answers only on its UNIX socket (root may use it).
SESSION_USER=virtgate-session
SESSION_DIR="$STATE_DIR/session"
SESSION_SOCK="$SESSION_DIR/run/libvirt/libvirt-sock"
session_ok() { virsh -q -c "qemu:///session?socket=$SESSION_SOCK" version >/dev/null 2>&1; }

start_session_libvirt() {
  if session_ok; then say "libvirtd (session): already answering on $SESSION_SOCK, left as is"; return; fi
  getent passwd "$SESSION_USER" >/dev/null ||
    useradd --system --no-create-home --home-dir "$SESSION_DIR" --shell /usr/sbin/nologin "$SESSION_USER"
  mkdir -p "$SESSION_DIR/run" "$SESSION_DIR/config" "$SESSION_DIR/cache" "$SESSION_DIR/images"
  chown -R "$SESSION_USER:" "$SESSION_DIR"
  chmod 0700 "$SESSION_DIR/run"
  chmod 0755 "$SESSION_DIR" "$SESSION_DIR/images"
  : >"$STATE_DIR/libvirtd-session.log"
  chown "$SESSION_USER:" "$STATE_DIR/libvirtd-session.log"
  # setpriv, not su: no PAM session, no login shell (the user has none).
  setpriv --reuid="$SESSION_USER" --regid="$SESSION_USER" --init-groups \
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$SESSION_DIR" XDG_RUNTIME_DIR="$SESSION_DIR/run" \
    XDG_CONFIG_HOME="$SESSION_DIR/config" XDG_CACHE_HOME="$SESSION_DIR/cache" \
    LIBVIRT_LOG_OUTPUTS="3:file:$STATE_DIR/libvirtd-session.log" \
    libvirtd -d -p "$SESSION_DIR/run/libvirtd.pid"
  wait_for "libvirtd (session, $SESSION_SOCK)" session_ok "$STATE_DIR/libvirtd-session.log"
  say "libvirtd (session): started as $SESSION_USER (UNIX $SESSION_SOCK)"
}

stop_pidfile() {
  local name="$1" pidfile="$2" pid i
  [ -f "$pidfile" ] || return 0
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    say "$name: stopped"
  fi
  rm -f "$pidfile"
}

# shellcheck source=scripts/services-sshd.sh
source "$(dirname "${BASH_SOURCE[0]}")/services-sshd.sh"

status() {
  local rc=0
  if redis_ok; then say "redis: up (127.0.0.1:$REDIS_PORT)"; else say "redis: DOWN"; rc=1; fi
  if command -v virsh >/dev/null 2>&1 && libvirt_unix_ok; then say "libvirtd unix: up"; else say "libvirtd unix: DOWN"; rc=1; fi
  if virtlogd_ok; then say "virtlogd: up"; else say "virtlogd: DOWN"; rc=1; fi
  if command -v virsh >/dev/null 2>&1 && libvirt_tcp_ok; then say "libvirtd tcp: up (127.0.0.1:$LIBVIRT_TCP_PORT)"; else say "libvirtd tcp: DOWN"; rc=1; fi
  if command -v virsh >/dev/null 2>&1 && libvirt_tls_ok; then say "libvirtd tls: up (localhost:$LIBVIRT_TLS_PORT, pkipath $PKI_DIR)"; else say "libvirtd tls: DOWN"; rc=1; fi
  if command -v virsh >/dev/null 2>&1 && session_ok; then say "libvirtd session: up ($SESSION_SOCK)"; else say "libvirtd session: DOWN"; rc=1; fi
  sshd_status || rc=1
  return $rc
}

main() {
  local cmd="${1:-up}"
  case "$cmd" in
    up)
      need_root "$@"
      mkdir -p "$STATE_DIR"
      install_missing
      start_redis
      start_virtlogd
      start_libvirt
      start_sshd
      start_session_libvirt
      ;;
    down)
      need_root "$@"
      stop_sshd
      stop_pidfile "libvirtd (session)" "$SESSION_DIR/run/libvirtd.pid"
      stop_pidfile libvirtd "$STATE_DIR/libvirtd.pid"
      stop_pidfile virtlogd "$STATE_DIR/virtlogd.pid"
      stop_pidfile redis "$STATE_DIR/redis.pid"
      ;;
    status) status ;;
    *) die "usage: $0 up|down|status" ;;
  esac
}

main "$@"
