#!/usr/bin/env bash
# npm run bench:jobs — what a job costs beside the direct libvirt call (see
# scripts/bench/jobs-bench.ts), and GET /v1/jobs among 50,000 job records
# (scripts/bench/jobs-list-bench.ts), queueing overhead with AOF on beside off
# (scripts/bench/jobs-aof-bench.ts), and how long a worker takes to start
# (scripts/bench/worker-start-bench.ts; BENCH_BASELINE_DIR: another checkout beside it). Prints figures; exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
bash scripts/services.sh up >&2
npx tsc -p tsconfig.json
echo "node $(node --version), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
node dist/scripts/bench/jobs-bench.js
node dist/scripts/bench/jobs-aof-bench.js
node dist/scripts/bench/jobs-list-bench.js
node dist/scripts/bench/worker-start-bench.js
node dist/scripts/bench/silent-host-bench.js
