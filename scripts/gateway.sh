#!/usr/bin/env bash
# Installs what is missing, starts Redis and libvirtd, builds, and runs the gateway
# (api and worker roles in one process) against the local libvirtd.
#
# The secrets the gateway needs across restarts are generated at the first run and
# kept in its state directory (VIRTGATE_STATE_DIR; default ~/.local/state/virtgate,
# readable by its owner only), unless given in the environment:
#   VIRTGATE_SECRETS_KEY     the key that encrypts the webhook secrets (secrets-key)
#   WEBHOOK_CALLBACK_SECRET  the secret that signs job callbacks (callback-secret)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
bash scripts/services.sh up

STATE_DIR="${VIRTGATE_STATE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/virtgate}"
(umask 077 && mkdir -p "$STATE_DIR")

# kept <file> <generator>: the file's content, generated into it the first time.
kept() {
  local file="$STATE_DIR/$1"
  if [ ! -s "$file" ]; then
    (umask 077 && "$2" >"$file.new" && mv "$file.new" "$file")
    printf '[gateway] generated %s (kept in %s)\n' "$1" "$file" >&2
  fi
  cat "$file"
}
secrets_key() { node -e 'process.stdout.write(require("node:crypto").randomBytes(32).toString("base64"))'; }
callback_secret() { node -e 'process.stdout.write("whsec_" + require("node:crypto").randomBytes(32).toString("base64"))'; }

if [ -z "${VIRTGATE_SECRETS_KEY:-}" ]; then
  VIRTGATE_SECRETS_KEY="$(kept secrets-key secrets_key)"
  export VIRTGATE_SECRETS_KEY
fi
if [ -z "${WEBHOOK_CALLBACK_SECRET:-}" ]; then
  WEBHOOK_CALLBACK_SECRET="$(kept callback-secret callback_secret)"
  export WEBHOOK_CALLBACK_SECRET
fi

rm -rf dist
npx tsc -p tsconfig.build.json
exec node dist/src/main.js
