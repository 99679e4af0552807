#!/usr/bin/env bash
# Installs what Sluice's tests and local cluster need on a fresh Debian
# machine: Go must already be there; redis-server comes from apt.
set -euo pipefail
if ! command -v go >/dev/null; then
  echo "deps: Go is not installed (https://go.dev/doc/install)" >&2
  exit 1
fi
if ! command -v redis-server >/dev/null; then
  echo "deps: installing redis-server with apt-get" >&2
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
  # The package starts a system service on :6379; Sluice starts its own.
fi
