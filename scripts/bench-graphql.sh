#!/usr/bin/env bash
# npm run bench:graphql — the CPU time each GraphQL bomb of issue #9 costs one
# request, with and without a token (see scripts/bench/graphql-bombs-bench.ts).
# Prints figures; exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
bash scripts/services.sh up >&2
npx tsc -p tsconfig.json
echo "node $(node --version), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
node dist/scripts/bench/graphql-bombs-bench.js
