#!/usr/bin/env bash
# npm run bench:rpc — operations per second of this project's TypeScript libvirt
# client and of Debian's python3-libvirt doing the same work against the local
# libvirtd's test driver, over the UNIX socket, TCP, TLS and SSH (the services script's
# TLS listener with its test PKI, and its sshd), then the ratios to the targets of
# issues 2 and 12. The machine is shared and noisy, so every measurement runs
# in ROUNDS rounds, the two clients take turns (workload by workload, the first
# one alternating), and the report gives medians. Exits 0 whether targets pass.
# Environment: BENCH_N (10000), BENCH_WARMUP (5000), BENCH_ROUNDS (3),
# BENCH_PY_THREADS (4), BENCH_URIS (space-separated; default the UNIX, TCP, TLS and SSH URIs).
set -euo pipefail
cd "$(dirname "$0")/.."

N="${BENCH_N:-10000}"
WARMUP="${BENCH_WARMUP:-5000}"
ROUNDS="${BENCH_ROUNDS:-3}"
PY_THREADS="${BENCH_PY_THREADS:-4}"
PKI="${VIRTGATE_SERVICES_DIR:-/var/lib/virtgate-services}/pki"
DEFAULT_URIS="test+unix:///default test+tcp://127.0.0.1/default"
DEFAULT_URIS+=" test+tls://localhost:${LIBVIRT_TLS_PORT:-16514}/default?pkipath=$PKI"
SSH="${VIRTGATE_SERVICES_DIR:-/var/lib/virtgate-services}/ssh"
DEFAULT_URIS+=" test+ssh://root@127.0.0.1:${VIRTGATE_SSH_PORT:-2222}/default?keyfile=$SSH/client_ed25519&known_hosts=$SSH/known_hosts"
read -r -a URIS <<<"${BENCH_URIS:-$DEFAULT_URIS}"
PYTHON=/usr/bin/python3 # Debian's python3, the one with python3-libvirt

npx tsc -p tsconfig.json
bash scripts/services.sh up >&2

results="$(mktemp)"
trap 'rm -f "$results"' EXIT
ts() { node dist/scripts/bench/rpc-bench.js "$1" "$2" "$N" "$WARMUP" >>"$results"; }
# python3-libvirt's +ssh runs the ssh binary, which checks root's own known_hosts and
# ignores the known_hosts parameter (that one is for libssh): no_verify=1 stands in for it
# there. Our client checks the host key against the known_hosts file named.
py_uri() { if [[ "$1" == *+ssh://* ]]; then echo "$1&no_verify=1"; else echo "$1"; fi; }
py() { "$PYTHON" scripts/bench/rpc_bench.py "$(py_uri "$1")" "$2" "$N" "$WARMUP" "$PY_THREADS" >>"$results"; }

echo "== Environment"
echo "node             $(node --version)"
echo "python3-libvirt  $(dpkg-query -W -f='${Version}' python3-libvirt), $($PYTHON --version 2>&1)"
echo "libvirtd         $(virsh -c "${URIS[0]}" version --daemon | sed -n 's/^Running against daemon: *//p')"
echo "CPUs             $(nproc) x $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)"
echo "load average     $(cut -d' ' -f1-3 /proc/loadavg)"
echo "N=$N operations per measurement, warm-up $WARMUP, $ROUNDS rounds, python threads $PY_THREADS"

for round in $(seq "$ROUNDS"); do
  for uri in "${URIS[@]}"; do
    for workload in libVersion lookupInfo; do
      echo "round $round/$ROUNDS: $uri $workload" >&2
      if ((round % 2)); then ts "$uri" "$workload" && py "$uri" "$workload"
      else py "$uri" "$workload" && ts "$uri" "$workload"; fi
    done
  done
done

node dist/scripts/bench/rpc-report.js "$results"
