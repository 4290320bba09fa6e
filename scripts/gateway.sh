#!/usr/bin/env bash
# Installs what is missing, starts Redis and libvirtd, builds, and runs the gateway
# (api and worker roles in one process) against the local libvirtd.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
bash scripts/services.sh up
rm -rf dist
npx tsc -p tsconfig.build.json
exec node dist/src/main.js
