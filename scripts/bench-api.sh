#!/usr/bin/env bash
# npm run bench:api — the domain listing over REST and GraphQL under load, beside
# python3-libvirt listing directly (see scripts/bench/api-bench.ts). Prints figures; exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
bash scripts/services.sh up >&2
npx tsc -p tsconfig.json
echo "node $(node --version), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
node dist/scripts/bench/api-bench.js
