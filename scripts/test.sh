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
# Every test process records the secrets it uses and what the gateway let out (logs,
# responses, Redis keys: test/support/secrets.ts); after the whole suite the secrets
# check looks for the first in the second, and fails the run on a leak.
VIRTGATE_TEST_RUN_DIR="$(mktemp -d "${TMPDIR:-/tmp}/virtgate-test-run.XXXXXX")"
export VIRTGATE_TEST_RUN_DIR
status=0
node --test --test-concurrency=2 --test-force-exit --test-timeout=300000 dist/test/unit/ dist/test/integration/ dist/test/e2e/ || status=$?
node dist/scripts/check-secrets.js "$VIRTGATE_TEST_RUN_DIR" || status=1
# Every response the tests received, validated against the committed openapi/openapi.json
# (test/support/response-check.ts): a response that breaks the contract fails the run.
node dist/scripts/check-responses.js "$VIRTGATE_TEST_RUN_DIR" || status=1
if [ "$status" -eq 0 ]; then rm -rf "$VIRTGATE_TEST_RUN_DIR"; else echo "test records kept in $VIRTGATE_TEST_RUN_DIR" >&2; fi
exit "$status"
