#!/usr/bin/env bash
# Installs the npm dependencies when they are missing or older than package-lock.json.
set -euo pipefail
cd "$(dirname "$0")/.."
node -e '
const [maj, min] = process.versions.node.split(".").map(Number);
if (maj < 20 || (maj === 20 && min < 19)) {
  console.error(`virtgate needs Node.js >= 20.19 (NestJS 12 relies on require(esm)); this is ${process.version}`);
  process.exit(1);
}'
# A node_modules that is a symlink is another checkout's install (a git worktree sharing it):
# `npm ci` here would empty it under that checkout, so it is left to its owner.
if [ -L node_modules ]; then
  exit 0
fi
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "[deps] npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi
