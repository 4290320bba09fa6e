#!/usr/bin/env bash
# Smoke checks of a running compose stack (docker-compose.yml): health, the admin token
# from the environment, the host connected, a listing, a define and an undefine as worker
# jobs, every docs file, and a Redis crash and recreation that loses nothing.
# Not part of `npm test`: it needs a running stack, and it defines a domain on its libvirtd.
#
#   VIRTGATE_ADMIN_TOKEN=… COMPOSE='docker compose -p virtgate' bash scripts/compose-smoke.sh
#
#   VIRTGATE_ADMIN_TOKEN  the token the stack was started with (required; never printed)
#   VIRTGATE_URL          the api (default http://127.0.0.1:${VIRTGATE_PORT:-8080})
#   COMPOSE               the compose command that reaches the stack, project and files
#                         included (default: docker compose); used on its redis service
#   SMOKE_DOMAIN          the domain defined then undefined (default compose-smoke-<pid>)
#   VIRTGATE_USER         as given to the compose file: 0 (root) skips the non-root check
#   LIBVIRT_SOCKET_GID    as given to the compose file: the group the containers must have
#                         (default: the group of /var/run/libvirt/libvirt-sock)
#   BUILD_LOG             the output of `up --build`, if at hand: npm ci must not have warned
#                         about engines
#
# Prints one line per check and ends with "compose-smoke: N passed, N failed"; exits
# non-zero when one failed.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ -z "${VIRTGATE_ADMIN_TOKEN:-}" ]; then
  echo 'compose-smoke: VIRTGATE_ADMIN_TOKEN must be the admin token of the stack' >&2
  exit 2
fi
B=${VIRTGATE_URL:-http://127.0.0.1:${VIRTGATE_PORT:-8080}}
read -r -a COMPOSE_CMD <<<"${COMPOSE:-docker compose}"
DOMAIN=${SMOKE_DOMAIN:-compose-smoke-$$}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/compose-smoke.XXXXXX")
# Tokens go to curl in header files (-H @file), never on a command line others can read.
header() { (umask 077 && printf 'Authorization: Bearer %s\n' "$2" >"$TMP/$1.h"); }
header admin "$VIRTGATE_ADMIN_TOKEN"
header wrong "wrong-$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
# What podman-compose 1.0.3 used to hand the container for ${VIRTGATE_ADMIN_TOKEN:-}.
header literal "\${VIRTGATE_ADMIN_TOKEN:-}"

pass=0
fail=0
check() {
  local name=$1
  shift
  if "$@" >"$TMP/check.out" 2>&1; then
    echo "ok   $name"
    pass=$((pass + 1))
  else
    echo "FAIL $name"
    sed 's/^/       /' "$TMP/check.out" | head -20
    fail=$((fail + 1))
  fi
}
# api <token> <curl args…>: the body on stdout; fails on a status >= 400.
api() {
  local who=$1
  shift
  curl -fsS --max-time 60 -H @"$TMP/$who.h" "$@"
}
# status <token> <path>: the HTTP status alone.
status() { curl -sS --max-time 30 -o /dev/null -w '%{http_code}' -H @"$TMP/$1.h" "$B$2"; }
# field <js expression of d>: reads JSON on stdin.
field() { node -e 'let s="";process.stdin.on("data",c=>s+=c).on("end",()=>{const d=JSON.parse(s);process.stdout.write(String('"$1"'))})'; }
# expect <want> <command…>: the command's output is exactly <want>.
expect() {
  local want=$1 got
  shift
  got=$("$@") || {
    echo "command failed: $*"
    return 1
  }
  [ "$got" = "$want" ] || {
    echo "want '$want', got '$got'"
    return 1
  }
}
wait_ready() {
  local i
  for i in $(seq "$1"); do
    curl -fs --max-time 5 -o /dev/null "$B/health/ready" && return 0
    sleep 1
  done
  curl -sS --max-time 5 "$B/health/ready"
  return 1
}
compose() { "${COMPOSE_CMD[@]}" "$@"; }

token_id=
cleanup() {
  # Whatever the checks left: the domain, the token made for the restart check.
  if [ "$(status admin "/v1/hosts/local/domains/$DOMAIN")" = 200 ]; then
    api admin -X DELETE -H 'Prefer: wait=30' "$B/v1/hosts/local/domains/$DOMAIN" >/dev/null 2>&1
  fi
  [ -n "$token_id" ] && api admin -X DELETE "$B/v1/tokens/$token_id" >/dev/null 2>&1
  rm -rf "$TMP"
}
trap cleanup EXIT

# --- health and the admin token
check "health/ready (within 90 s)" wait_ready 90
check "health/live" curl -fsS -o /dev/null "$B/health/live"
me() { api "$1" "$B/v1/me" | field d.role; }
check "admin token from the environment is admin" expect admin me admin
check "a wrong token is refused (401)" expect 401 status wrong /v1/me
check "the literal \${VIRTGATE_ADMIN_TOKEN:-} is no token (401)" expect 401 status literal /v1/me

# --- the containers: not root where the socket allows; a literal ${…} token stops the gateway
SOCKET_GID=${LIBVIRT_SOCKET_GID:-$(stat -c %g /var/run/libvirt/libvirt-sock 2>/dev/null || echo 0)}
ids_of() { compose exec -T "$1" sh -c 'echo "$(id -u) $(id -G)"'; }
not_root() {
  local ids
  ids=$(ids_of "$1") || return 1
  case " $ids " in
    " 0 "*) echo "uid 0 (groups ${ids#* })" && return 1 ;;
    *" $SOCKET_GID "*) return 0 ;;
    *) echo "uid and groups $ids: no $SOCKET_GID, the socket's group" && return 1 ;;
  esac
}
if [ "${VIRTGATE_USER:-node}" != 0 ]; then
  check "api runs as non-root with the socket's group $SOCKET_GID" not_root api
  check "worker runs as non-root with the socket's group $SOCKET_GID" not_root worker
fi
refused_at_boot() {
  # A second gateway process in the api container, given the string podman-compose 1.0.3
  # passed on (-e values are not interpolated); it must stop before it listens. exec, not
  # run: docker-compose v1's run asks for container links, which podman's API refuses.
  if compose exec -T -e 'VIRTGATE_ADMIN_TOKEN=${VIRTGATE_ADMIN_TOKEN:-}' -e PORT=8099 api \
    node dist/src/main.js >"$TMP/run.out" 2>&1; then
    echo 'the gateway started'
    return 1
  fi
  grep -q 'VIRTGATE_ADMIN_TOKEN holds an unexpanded variable reference' "$TMP/run.out" || {
    tail -5 "$TMP/run.out"
    return 1
  }
}
check "VIRTGATE_ADMIN_TOKEN=\${VIRTGATE_ADMIN_TOKEN:-} stops the gateway at boot, naming it" refused_at_boot
no_engine_warning() { ! grep -i -m3 EBADENGINE "$BUILD_LOG"; }
if [ -n "${BUILD_LOG:-}" ]; then check "npm ci in the image build: no engine warning" no_engine_warning; fi

# --- the host and a listing (the api's connection through the mounted socket)
host_state() { api admin "$B/v1/hosts/local" | field d.connection.state; }
check "host local connected" expect connected host_state
listing() { api admin "$B/v1/hosts/local/domains" | field 'Array.isArray(d.items)'; }
check "domains listing" expect true listing

# --- a define as a job: the api role runs no jobs, so a completed one is the worker's
define_job() {
  api admin -H 'Content-Type: application/json' -H 'Prefer: wait=60' -X POST \
    -d "{\"name\":\"$DOMAIN\",\"memoryMiB\":64,\"vcpus\":1,\"type\":\"qemu\"}" \
    "$B/v1/hosts/local/domains" >"$TMP/define.json" || return 1
  field '`${d.type} ${d.state}`' <"$TMP/define.json"
}
check "define $DOMAIN (worker job)" expect 'domain.define completed' define_job
define_id=$(field d.id <"$TMP/define.json" 2>/dev/null)
domain_state() { api admin "$B/v1/hosts/local/domains/$DOMAIN" | field d.state; }
check "$DOMAIN is shut off" expect shutoff domain_state
listed() { api admin "$B/v1/hosts/local/domains" | field "d.items.some(x => x.name === '$DOMAIN')"; }
check "$DOMAIN is in the listing" expect true listed

# --- every docs file, the committed ones byte for byte
doc() {
  local path=$1 type=$2
  api admin -o "$TMP/doc" -w '%{content_type}' "$B/docs/$path" >"$TMP/doc.type" || return 1
  grep -q "^$type" "$TMP/doc.type" || {
    echo "content-type $(cat "$TMP/doc.type"), want $type"
    return 1
  }
  [ -s "$TMP/doc" ] || {
    echo empty
    return 1
  }
  if [ -n "${3:-}" ]; then cmp "$TMP/doc" "$3"; fi
}
check "docs/ (Swagger UI)" doc '' text/html
check "docs/index.html" doc index.html text/html
check "docs/swagger-ui-init.js" doc swagger-ui-init.js application/javascript
check "docs/swagger-ui-bundle.js" doc swagger-ui-bundle.js application/javascript
check "docs/swagger-ui.css" doc swagger-ui.css text/css
check "docs/openapi.json" doc openapi.json application/json
check "docs/openapi.yaml" doc openapi.yaml text/yaml
check "docs/schema.graphql = openapi/schema.graphql" doc schema.graphql text/plain openapi/schema.graphql
check "docs/asyncapi.yaml = openapi/asyncapi.yaml" doc asyncapi.yaml text/yaml openapi/asyncapi.yaml
check "docs/login = src/openapi/docs-ui/login.html" doc login text/html src/openapi/docs-ui/login.html
check "docs/login.js = src/openapi/docs-ui/login.js" doc login.js text/javascript src/openapi/docs-ui/login.js
check "docs/login.css = src/openapi/docs-ui/login.css" doc login.css text/css src/openapi/docs-ui/login.css
same_openapi() {
  api admin "$B/docs/openapi.json" >"$TMP/openapi.json" || return 1
  node -e 'const fs=require("node:fs"),a=JSON.parse(fs.readFileSync(process.argv[1])),b=JSON.parse(fs.readFileSync("openapi/openapi.json"));
    process.exit(require("node:util").isDeepStrictEqual(a,b)?0:1)' "$TMP/openapi.json" ||
    { echo 'the served document is not openapi/openapi.json: an image of other code?'; return 1; }
}
check "docs/openapi.json = openapi/openapi.json" same_openapi

# --- Redis: killed (no clean shutdown, so no save on the way out), its container removed and
# made anew from the named volume: what was written a second before is still there.
make_token() {
  api admin -H 'Content-Type: application/json' -X POST \
    -d '{"name":"compose-smoke-restart","role":"viewer"}' "$B/v1/tokens" >"$TMP/token.json" || return 1
  token_id=$(field d.id <"$TMP/token.json")
  header viewer "$(field d.token <"$TMP/token.json")"
  rm -f "$TMP/token.json"
  expect viewer me viewer
}
check "a viewer token made before the restart" make_token
aof() { compose exec -T redis redis-cli CONFIG GET appendonly | tail -1; }
check "compose Redis writes an AOF" expect yes aof
policy() { compose exec -T redis redis-cli CONFIG GET maxmemory-policy | tail -1; }
check "compose Redis never evicts" expect noeviction policy
redis_recreated() {
  sleep 2 # appendfsync everysec
  compose kill -s SIGKILL redis && compose rm -f redis && compose up -d --no-deps redis
}
check "Redis killed and its container made anew" redis_recreated
check "health/ready again (within 90 s)" wait_ready 90
check "the viewer token still works" expect viewer me viewer
check "the admin token still works" expect admin me admin
old_job() { api admin "$B/v1/jobs/$define_id" | field '`${d.type} ${d.state}`'; }
check "the define job is still there" expect 'domain.define completed' old_job

# --- an undefine as a job, after the restart: the worker is back on Redis too
undefine_job() {
  api admin -H 'Prefer: wait=60' -X DELETE "$B/v1/hosts/local/domains/$DOMAIN" | field '`${d.type} ${d.state}`'
}
check "undefine $DOMAIN (worker job)" expect 'domain.undefine completed' undefine_job
check "$DOMAIN is gone (404)" expect 404 status admin "/v1/hosts/local/domains/$DOMAIN"

echo "compose-smoke: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
