#!/usr/bin/env bash
# Installs what Sluice's tests and local cluster need on a fresh Debian
# machine. Go must already be there; redis-server comes from apt.
#
#   scripts/deps.sh              redis-server
#   scripts/deps.sh --browser    also Debian's chromium, for the dashboard test
set -euo pipefail
need=()
if ! command -v go >/dev/null; then
  echo "deps: Go is not installed (https://go.dev/doc/install)" >&2
  exit 1
fi
command -v redis-server >/dev/null || need+=(redis-server)
if [ "${1:-}" = "--browser" ] && [ ! -x /usr/bin/chromium ]; then
  need+=(chromium)
fi
[ ${#need[@]} -eq 0 ] && exit 0
echo "deps: installing ${need[*]} with apt-get" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
# The redis-server package may start a system service on :6379; Sluice's tests
# start their own servers on free ports and never use it.
