#!/usr/bin/env bash
# npm run bench:events — the event pipeline against a real gateway and qemu:///system:
# lifecycle-event latency to SSE, GraphQL and webhooks, sustained events/s with 100 SSE
# clients, memory with 1,000 idle SSE clients (see scripts/bench/events-bench.ts).
# Prints figures; exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
bash scripts/services.sh up >&2
# 1,000 SSE clients and the gateway serving them each need a descriptor per connection.
want=8192
hard="$(ulimit -Hn)"
if [ "$hard" != unlimited ] && [ "$hard" -lt "$want" ]; then want="$hard"; fi
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$want" ]; then ulimit -n "$want"; fi
npx tsc -p tsconfig.json
echo "node $(node --version), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), ulimit -n $(ulimit -n)"
node dist/scripts/bench/events-bench.js
