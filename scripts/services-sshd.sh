# shellcheck shell=bash
# The sshd of scripts/services.sh (sourced by it): OpenSSH on 127.0.0.1:$SSH_PORT only, with
# its own configuration, host key, authorized keys and pid file in $SSH_DIR, so tests of
# qemu+ssh:// log in as root with keys made here and check the host key against a
# known_hosts made here. The machine's own sshd (if any) and /etc/ssh are never touched.
#
# Files in $SSH_DIR (test/support/services.ts names them too):
#   client_ed25519            a key without passphrase, authorized
#   client_rsa_pass           an RSA key encrypted with the passphrase in client_rsa_pass.passphrase, authorized
#   stranger_ed25519          a key that is not authorized
#   known_hosts               [127.0.0.1]:$SSH_PORT and [localhost]:$SSH_PORT with the host key
#   ssh_host_ed25519_key      the server's host key
#   authorized_keys, sshd_config, sshd.pid, sshd.log

SSH_PORT="${VIRTGATE_SSH_PORT:-2222}"
SSH_DIR="$STATE_DIR/ssh"

# Whether an sshd on 127.0.0.1:$SSH_PORT lets the authorized key in with the host key we know:
# a stranger's sshd on the port is not ours and is reported, never used.
sshd_ok() {
  [ -f "$SSH_DIR/client_ed25519" ] && [ -f "$SSH_DIR/known_hosts" ] || return 1
  ssh -q -T -p "$SSH_PORT" -i "$SSH_DIR/client_ed25519" \
    -o BatchMode=yes -o IdentitiesOnly=yes -o ConnectTimeout=3 \
    -o UserKnownHostsFile="$SSH_DIR/known_hosts" -o GlobalKnownHostsFile=/dev/null \
    -o StrictHostKeyChecking=yes -o ControlPath=none \
    root@127.0.0.1 true </dev/null >/dev/null 2>&1
}

sshd_port_taken() { ss -ltnH "sport = :$SSH_PORT" 2>/dev/null | grep -q .; }

# A key pair made once; later runs keep it (tests and registered hosts may know it).
ensure_ssh_key() {
  local file="$1" type="$2" passphrase="${3:-}"
  [ -f "$file" ] && return 0
  ssh-keygen -q -t "$type" -N "$passphrase" -C "virtgate-test-$(basename "$file")" -f "$file" >/dev/null
}

ensure_ssh_keys() {
  mkdir -p "$SSH_DIR"
  chmod 0700 "$SSH_DIR"
  ensure_ssh_key "$SSH_DIR/ssh_host_ed25519_key" ed25519
  ensure_ssh_key "$SSH_DIR/client_ed25519" ed25519
  ensure_ssh_key "$SSH_DIR/stranger_ed25519" ed25519
  if [ ! -f "$SSH_DIR/client_rsa_pass" ]; then
    # Random, never printed: tests read it from the file, as a host's credentials would be.
    (umask 077; head -c 24 /dev/urandom | base64 | tr -d '/+=\n' >"$SSH_DIR/client_rsa_pass.passphrase")
    ensure_ssh_key "$SSH_DIR/client_rsa_pass" rsa "$(cat "$SSH_DIR/client_rsa_pass.passphrase")"
  fi
  chmod 0600 "$SSH_DIR/client_rsa_pass.passphrase"
  cat "$SSH_DIR/client_ed25519.pub" "$SSH_DIR/client_rsa_pass.pub" >"$SSH_DIR/authorized_keys"
  chmod 0600 "$SSH_DIR/authorized_keys"
  local hostkey
  hostkey="$(cut -d' ' -f1,2 "$SSH_DIR/ssh_host_ed25519_key.pub")"
  printf '[127.0.0.1]:%s %s\n[localhost]:%s %s\n' "$SSH_PORT" "$hostkey" "$SSH_PORT" "$hostkey" \
    >"$SSH_DIR/known_hosts"
}

write_sshd_config() {
  cat >"$SSH_DIR/sshd_config" <<CONF
$MARK
# Loopback only, keys only: root may log in with a key listed in $SSH_DIR/authorized_keys.
ListenAddress 127.0.0.1
Port $SSH_PORT
HostKey $SSH_DIR/ssh_host_ed25519_key
PidFile $SSH_DIR/sshd.pid
AuthorizedKeysFile $SSH_DIR/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitTTY yes
X11Forwarding no
AllowTcpForwarding no
AllowAgentForwarding no
PrintMotd no
LogLevel VERBOSE
CONF
}

start_sshd() {
  ensure_ssh_keys
  if sshd_ok; then say "sshd: already answering on 127.0.0.1:$SSH_PORT, left as is"; return; fi
  if sshd_port_taken; then
    die "sshd: something else listens on 127.0.0.1:$SSH_PORT and does not accept our keys; stop it or set VIRTGATE_SSH_PORT"
  fi
  write_sshd_config
  # sshd's privilege separation directory (normally made by systemd's RuntimeDirectory).
  mkdir -p /run/sshd
  chmod 0755 /run/sshd
  /usr/sbin/sshd -t -f "$SSH_DIR/sshd_config" || die "sshd: $SSH_DIR/sshd_config is invalid"
  : >"$SSH_DIR/sshd.log"
  /usr/sbin/sshd -f "$SSH_DIR/sshd_config" -E "$SSH_DIR/sshd.log"
  wait_for "sshd (127.0.0.1:$SSH_PORT)" sshd_ok "$SSH_DIR/sshd.log"
  say "sshd: started on 127.0.0.1:$SSH_PORT (keys and known_hosts in $SSH_DIR)"
}

stop_sshd() { stop_pidfile sshd "$SSH_DIR/sshd.pid"; }

# Prints the status line; returns 1 when it is down.
sshd_status() {
  if command -v ssh >/dev/null 2>&1 && sshd_ok; then
    say "sshd: up (127.0.0.1:$SSH_PORT)"
  else
    say "sshd: DOWN"
    return 1
  fi
}
