#!/usr/bin/env bash
# The suite, as CI runs it on a fresh clone: npm dependencies, the real services
# (Redis, libvirtd with QEMU under TCG), a clean build, lint, then every test.
#
#   bash scripts/test.sh                 everything (npm test, .ci/run)
#   bash scripts/test.sh unit e2e        only these tiers (npm run test:unit, …): the same
#                                        build, services, timeout and concurrency; no lint
#                                        and no after-suite checks (they need the whole suite)
#
# VIRTGATE_TEST_SHUFFLE=1 runs the files in a random order (printed with its seed,
# VIRTGATE_TEST_SEED=N repeats one): each file must pass alone and in any order.
set -euo pipefail
cd "$(dirname "$0")/.."
TIERS=("$@")
[ "${#TIERS[@]}" -gt 0 ] || TIERS=(unit integration e2e)
for tier in "${TIERS[@]}"; do
  case "$tier" in
    unit | integration | e2e) ;;
    *) echo "unknown test tier '$tier' (unit, integration, e2e)" >&2; exit 2 ;;
  esac
done
bash scripts/ensure-deps.sh
bash scripts/services.sh up
rm -rf dist
npx tsc -p tsconfig.json
if [ "$#" -eq 0 ]; then npm run --silent lint; fi
# The files, listed here: `node --test <dir>` works on Node 20 only, and globs on 21+ only.
mapfile -t FILES < <(for tier in "${TIERS[@]}"; do find "dist/test/$tier" -name '*.test.js'; done | sort)
if [ "${VIRTGATE_TEST_SHUFFLE:-0}" = 1 ]; then
  SEED="${VIRTGATE_TEST_SEED:-$RANDOM}"
  echo "[test] files in a shuffled order, seed $SEED (VIRTGATE_TEST_SEED=$SEED repeats it)"
  mapfile -t FILES < <(printf '%s\n' "${FILES[@]}" | shuf --random-source=<(yes "$SEED"))
fi
# Every test process records the secrets it uses and what the gateway let out (logs,
# responses, Redis keys: test/support/secrets.ts); after the whole suite the secrets
# check looks for the first in the second, and fails the run on a leak.
VIRTGATE_TEST_RUN_DIR="$(mktemp -d "${TMPDIR:-/tmp}/virtgate-test-run.XXXXXX")"
export VIRTGATE_TEST_RUN_DIR
status=0
node --test --test-concurrency=2 --test-force-exit --test-timeout=300000 "${FILES[@]}" || status=$?
# The after-suite checks read what the whole suite recorded: a tier alone is not enough.
if [ "$#" -eq 0 ]; then
  node dist/scripts/check-secrets.js "$VIRTGATE_TEST_RUN_DIR" || status=1
  # Every response the tests received, validated against the committed openapi/openapi.json
  # (test/support/response-check.ts): a response that breaks the contract fails the run.
  node dist/scripts/check-responses.js "$VIRTGATE_TEST_RUN_DIR" || status=1
fi
if [ "$status" -eq 0 ]; then rm -rf "$VIRTGATE_TEST_RUN_DIR"; else echo "test records kept in $VIRTGATE_TEST_RUN_DIR" >&2; fi
exit "$status"
