#!/usr/bin/env bash
# Local Sluice cluster on 127.0.0.1.
#
#   scripts/cluster.sh run    start everything in the foreground; Ctrl-C stops it
#   scripts/cluster.sh up     start everything in the background (state in .run/)
#   scripts/cluster.sh down   stop what `up` started
#
# Redis on :6379 and NATS on :4222 are used when they already answer (and are
# then never stopped by this script); otherwise they are started here. Then:
# the demo upstream (:8000), the demo data, two gateway nodes (traffic :8080
# and :8081, operations :9080 and :9081), the syncer (:7460) and an analytics
# worker (:7461) when their binaries are built. Binaries come from bin/
# (make build).
set -euo pipefail
cd "$(dirname "$0")/.."

RUN=.run
PIDS=$RUN/pids
LOGS=$RUN/logs
BIN=bin
# Ports of Redis, NATS and the demo upstream can be moved with these.
REDIS_PORT=${SLUICE_DEV_REDIS_PORT:-6379}
NATS_PORT=${SLUICE_DEV_NATS_PORT:-4222}
REDIS_ADDR=127.0.0.1:$REDIS_PORT
NATS_URL=nats://127.0.0.1:$NATS_PORT
UPSTREAM_ADDR=127.0.0.1:${SLUICE_DEV_UPSTREAM_PORT:-8000}
DEMO_KEY=sluice-demo-key-0123456789abcdef
# The analytics worker's token (auth.token) for the local cluster.
ANALYTICS_TOKEN=${SLUICE_DEV_ANALYTICS_TOKEN:-sluice-dev-analytics-token-0123456789}
MODE=${1:-}
STARTED=()

say() { printf '\033[1m%s\033[0m\n' "$*"; }
warn() { printf 'cluster: %s\n' "$*" >&2; }

# start NAME CMD...: run CMD in the background, log to .run/logs/NAME.log,
# remember its pid in .run/pids/NAME.pid.
start() {
  local name=$1; shift
  mkdir -p "$PIDS" "$LOGS"
  if [ "$MODE" = up ]; then
    # Own session: closing the terminal does not stop the background cluster.
    setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
  else
    "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
  fi
  local pid=$!
  echo "$pid" >"$PIDS/$name.pid"
  STARTED+=("$name")
  echo "  started $name (pid $pid, log $LOGS/$name.log)"
}

# alive NAME: the process recorded for NAME still runs.
alive() {
  local f=$PIDS/$1.pid
  [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null
}

# stop NAME: SIGTERM the recorded process, SIGKILL after 10s.
stop() {
  local name=$1 f=$PIDS/$1.pid pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      warn "$name (pid $pid) did not stop in 10s, killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    echo "  stopped $name (pid $pid)"
  fi
  rm -f "$f"
}

stop_all() {
  # Reverse start order: gateways before the stores they use.
  local order=(analytics syncer gateway-2 gateway-1 upstream nats redis)
  for name in "${order[@]}"; do stop "$name"; done
}

need_dev() {
  if [ ! -x "$BIN/sluice-dev" ]; then
    warn "$BIN/sluice-dev is not built: run 'make build' (or 'make $MODE')"
    exit 1
  fi
}

answers() { "$BIN/sluice-dev" wait --quiet --timeout "${2:-1s}" "$1" 2>/dev/null; }

wait_ready() {
  local name=$1 url=$2
  if ! "$BIN/sluice-dev" wait --quiet --timeout 30s "$url"; then
    warn "$name is not ready at $url; last lines of $LOGS/$name.log:"
    tail -n 20 "$LOGS/$name.log" >&2 || true
    return 1
  fi
  echo "  $name ready ($url)"
}

start_redis() {
  if answers "$REDIS_ADDR"; then
    echo "  using the Redis already answering on $REDIS_ADDR"
    return
  fi
  if ! command -v redis-server >/dev/null; then
    warn "redis-server is not installed (make deps installs it)"
    exit 1
  fi
  mkdir -p "$RUN/redis"
  start redis redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$PWD/$RUN/redis" \
    --appendonly yes --save "" --protected-mode no
  answers "$REDIS_ADDR" 10s || { warn "redis-server did not start"; tail "$LOGS/redis.log" >&2; exit 1; }
}

start_nats() {
  if answers "${NATS_URL#nats://}"; then
    echo "  using the NATS already answering on $NATS_URL (it needs JetStream)"
    return
  fi
  start nats "$BIN/sluice-dev" nats --port "$NATS_PORT" --store "$RUN/nats"
  answers "${NATS_URL#nats://}" 10s || { warn "NATS did not start"; tail "$LOGS/nats.log" >&2; exit 1; }
}

gateway_config() {
  local n=$1 file=$RUN/gateway-$1.yaml
  cat >"$file" <<EOF
# Written by scripts/cluster.sh for the local cluster.
node_id: local-$n
listen: "127.0.0.1:$((8079 + n))"
ops_listen: "127.0.0.1:$((9079 + n))"
redis: {addr: "$REDIS_ADDR"}
nats: {url: "$NATS_URL"}
EOF
  echo "$file"
}

# seed_demo creates the demo API, policy and key through the admin API with
# sluicectl, as a user would (or, without the syncer, straight into Redis
# with sluice-dev seed). Both are idempotent.
seed_demo() {
  if [ "$SYNCER" = 1 ] && [ -x "$BIN/sluicectl" ]; then
    local ctl=("$BIN/sluicectl" --addr http://127.0.0.1:7460)
    cat >"$RUN/demo.yaml" <<EOF
# The demo API of the local cluster (scripts/cluster.sh).
apis:
  - id: demo
    name: Demo API
    listen_path: /demo/
    strip_listen_path: true
    upstream: {targets: ["http://$UPSTREAM_ADDR"]}
    auth: {mode: api_key}
policies:
  - id: demo-basic
    name: Demo basic
    access: [{api: demo}]
    rate_limit: {rate: 20, per: 1s}
    quota: {max: 10000, renewal: 1h}
EOF
    "${ctl[@]}" apply -f "$RUN/demo.yaml" | sed 's/^/  /'
    if ! "${ctl[@]}" keys get demo-key >/dev/null 2>&1; then
      "${ctl[@]}" keys create --id demo-key --key "$DEMO_KEY" --policy demo-basic --alias demo >/dev/null
      echo "  created the demo key with sluicectl"
    fi
  else
    "$BIN/sluice-dev" seed --redis "$REDIS_ADDR" --upstream "http://$UPSTREAM_ADDR" | sed 's/^/  /'
  fi
}

start_cluster() {
  need_dev
  if [ -d "$PIDS" ] && ls "$PIDS"/*.pid >/dev/null 2>&1; then
    for f in "$PIDS"/*.pid; do
      if kill -0 "$(cat "$f")" 2>/dev/null; then
        warn "a cluster started by this script is still running ($f): run 'make down' first"
        exit 1
      fi
    done
    rm -f "$PIDS"/*.pid
  fi
  mkdir -p "$RUN" "$LOGS"
  say "Starting the local Sluice cluster"
  start_redis
  start_nats
  if answers "$UPSTREAM_ADDR"; then
    warn "something already listens on $UPSTREAM_ADDR; set SLUICE_DEV_UPSTREAM_PORT to another port"
    exit 1
  fi
  start upstream "$BIN/sluice-dev" upstream --listen "$UPSTREAM_ADDR"

  SYNCER=0
  if [ -x "$BIN/sluice-syncer" ]; then
    start syncer env SLUICE_REDIS_ADDR="$REDIS_ADDR" SLUICE_NATS_URL="$NATS_URL" \
      "$BIN/sluice-syncer" --insecure-dev --listen 127.0.0.1:7460
    SYNCER=1
    wait_ready syncer "http://127.0.0.1:7460/ready" || exit 1
  else
    warn "$BIN/sluice-syncer is not built: skipping the syncer (admin API)"
  fi
  seed_demo

  GATEWAYS=0
  if [ -x "$BIN/sluice-gateway" ]; then
    for n in 1 2; do
      start "gateway-$n" "$BIN/sluice-gateway" --config "$(gateway_config "$n")"
    done
    GATEWAYS=2
  else
    warn "$BIN/sluice-gateway is not built yet: skipping the gateway nodes"
  fi
  ANALYTICS=0
  if [ -x "$BIN/sluice-analytics" ]; then
    start analytics env SLUICE_REDIS_ADDR="$REDIS_ADDR" SLUICE_NATS_URL="$NATS_URL" \
      SLUICE_AUTH_TOKEN="$ANALYTICS_TOKEN" "$BIN/sluice-analytics" --listen 127.0.0.1:7461
    ANALYTICS=1
  else
    warn "$BIN/sluice-analytics is not built: skipping the analytics worker"
  fi

  local ok=1
  for n in $(seq "$GATEWAYS"); do wait_ready "gateway-$n" "http://127.0.0.1:$((9079 + n))/ready" || ok=0; done
  [ "$ANALYTICS" = 1 ] && { wait_ready analytics "http://127.0.0.1:7461/ready" || ok=0; }
  [ "$ok" = 1 ] || warn "some services are not ready; see the logs above"
  print_help
}

print_help() {
  echo
  say "Sluice is running"
  if [ "$GATEWAYS" -gt 0 ]; then
    cat <<EOF
Call the demo API through either node (policy demo-basic: 20 requests/s, 10000/hour):
  curl -i -H 'X-API-Key: $DEMO_KEY' http://127.0.0.1:8080/demo/hello
  curl -i -H 'Authorization: Bearer $DEMO_KEY' http://127.0.0.1:8081/demo/hello
  curl -i http://127.0.0.1:8080/demo/hello                       # no key: 401
  seq 60 | xargs -P 30 -I{} curl -s -o /dev/null -w '%{http_code}\\n' -H 'X-API-Key: $DEMO_KEY' http://127.0.0.1:8080/demo/ | sort | uniq -c   # some 429
  curl -i -H 'X-API-Key: $DEMO_KEY' 'http://127.0.0.1:8080/demo/slow?ms=200'
  curl -i -H 'X-API-Key: $DEMO_KEY' http://127.0.0.1:8080/demo/status/503

Operations:
  http://127.0.0.1:9080/metrics   http://127.0.0.1:9081/metrics   (/health, /ready)
EOF
  fi
  if [ "$SYNCER" = 1 ]; then
    cat <<EOF
Admin API (no token: --insecure-dev, loopback only): http://127.0.0.1:7460
  curl -s http://127.0.0.1:7460/v1/status
  curl -s http://127.0.0.1:7460/v1/nodes
EOF
    if [ -x "$BIN/sluicectl" ]; then
      cat <<EOF
  $BIN/sluicectl apis list
  $BIN/sluicectl keys list
  $BIN/sluicectl nodes
  $BIN/sluicectl status
  $BIN/sluicectl audit --follow      # who changed what (anonymous under --insecure-dev)
  $BIN/sluicectl export > sluice.yaml   # then edit and: $BIN/sluicectl apply -f sluice.yaml
EOF
    fi
  fi
  if [ "$ANALYTICS" = 1 ]; then
    cat <<EOF
Analytics (token $ANALYTICS_TOKEN; /health, /ready, /metrics need none):
  Dashboard: http://127.0.0.1:7461/#token=$ANALYTICS_TOKEN   (kept in the browser afterwards)
  curl -s -H 'Authorization: Bearer $ANALYTICS_TOKEN' 'http://127.0.0.1:7461/v1/usage/top?by=api'
  metrics: http://127.0.0.1:7461/metrics
EOF
    if [ -x "$BIN/sluicectl" ]; then
      echo "  SLUICE_ANALYTICS_TOKEN=$ANALYTICS_TOKEN $BIN/sluicectl usage --api demo"
      echo "  $BIN/sluicectl usage tail      # live events from NATS"
    fi
  fi
  echo "Logs: $LOGS/"
}

case "$MODE" in
  run)
    trap 'trap - INT TERM EXIT; echo; say "Stopping"; stop_all' INT TERM EXIT
    start_cluster
    echo "Press Ctrl-C to stop."
    # Wait until interrupted or until every started process has exited.
    while :; do
      any=0
      for name in "${STARTED[@]}"; do alive "$name" && any=1; done
      [ "$any" = 1 ] || { warn "every process exited"; break; }
      sleep 1
    done
    ;;
  up)
    # A failed start leaves nothing behind.
    trap 'rc=$?; trap - EXIT; if [ "$rc" -ne 0 ]; then stop_all; fi; exit "$rc"' EXIT
    start_cluster
    echo "Stop it with: make down"
    ;;
  down)
    if ! ls "$PIDS"/*.pid >/dev/null 2>&1; then
      echo "cluster: nothing to stop"
      exit 0
    fi
    say "Stopping the local Sluice cluster"
    stop_all
    ;;
  *)
    echo "usage: $0 run|up|down" >&2
    exit 2
    ;;
esac
