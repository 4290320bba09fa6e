#!/usr/bin/env bash
# The whole suite, as CI runs it on a fresh clone: npm dependencies, the real services
# (Redis, libvirtd with QEMU under TCG), a clean build, lint, then every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
bash scripts/services.sh up
rm -rf dist
npx tsc -p tsconfig.json
npm run --silent lint
node --test --test-concurrency=2 --test-force-exit --test-timeout=300000 dist/test/unit/ dist/test/integration/ dist/test/e2e/
