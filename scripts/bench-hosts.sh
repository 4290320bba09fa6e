#!/usr/bin/env bash
# npm run bench:hosts — the latency of one host's listings while another host falls
# silent, beside a run where every host answers (scripts/bench/hosts-bench.ts). Prints figures; exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
bash scripts/services.sh up >&2
npx tsc -p tsconfig.json
echo "node $(node --version), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
node dist/scripts/bench/hosts-bench.js
