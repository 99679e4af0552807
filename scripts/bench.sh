#!/usr/bin/env bash
# make bench: load-test a sluice-gateway node against a bare proxy hop on
# 127.0.0.1 (see docs/benchmarks.md). Installs wrk from apt when missing and
# falls back to the built-in Go load generator when that fails.
# Extra flags for sluice-bench: scripts/bench.sh --quick, or BENCH_FLAGS=...;
# SCENARIOS=edge,limits (make bench SCENARIOS=...) selects what runs.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x bin/sluice-bench ]; then
  echo "bench: bin/sluice-bench is not built: run 'make build'" >&2
  exit 1
fi
if [ ! -x bin/sluice-gateway ]; then
  echo "bench: bin/sluice-gateway is not built: only the upstream and bare-hop scenarios will run" >&2
fi
if ! command -v wrk >/dev/null; then
  echo "bench: installing wrk with apt-get" >&2
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo -n"
  if ! { $SUDO apt-get install -y -qq wrk >/dev/null 2>&1 ||
         { $SUDO apt-get update -qq >/dev/null 2>&1 && $SUDO apt-get install -y -qq wrk >/dev/null 2>&1; }; }; then
    echo "bench: could not install wrk; using the built-in Go load generator" >&2
  fi
fi
# shellcheck disable=SC2086
exec bin/sluice-bench ${SCENARIOS:+--scenarios "$SCENARIOS"} ${BENCH_FLAGS:-} "$@"
