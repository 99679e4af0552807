#!/usr/bin/env bash
# Checks the Helm chart (deployments/helm/sluice): `helm lint --strict` and
# `helm template` with every value set in its ci/ folder, compared with the
# rendered manifests kept in deployments/helm/rendered/ (which the Go tests
# decode against the Kubernetes API types and check for unknown SLUICE_*
# variables); and values the chart must refuse, with the message it gives.
#
#   scripts/helm-check.sh            check
#   scripts/helm-check.sh --update   rewrite deployments/helm/rendered/ after a chart change
#
# Helm is a Go module, run through the Go module proxy at a pinned version
# (built once, then cached by the go command).
set -euo pipefail
cd "$(dirname "$0")/.."

HELM_VERSION="${HELM_VERSION:-v3.22.0}"
chart=deployments/helm/sluice
rendered=deployments/helm/rendered
update=false
[ "${1:-}" = "--update" ] && update=true

helm() { go run "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}" "$@"; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$rendered"
failed=0

for values in "$chart"/ci/*-values.yaml; do
  name=$(basename "$values" -values.yaml)
  if ! helm lint --strict --quiet "$chart" -f "$values" >"$tmp/lint" 2>&1; then
    echo "helm lint ($name) failed:"; cat "$tmp/lint"; failed=1; continue
  fi
  helm template sluice "$chart" --namespace sluice -f "$values" >"$tmp/$name.yaml"
  if $update; then
    cp "$tmp/$name.yaml" "$rendered/$name.yaml"
    echo "helm: $rendered/$name.yaml written"
  elif ! diff -u "$rendered/$name.yaml" "$tmp/$name.yaml" >"$tmp/diff"; then
    echo "helm template ($name) differs from $rendered/$name.yaml; run scripts/helm-check.sh --update and review:"
    head -50 "$tmp/diff"; failed=1
  fi
done
if ! $update; then
  for f in "$rendered"/*.yaml; do
    [ -e "$chart/ci/$(basename "$f" .yaml)-values.yaml" ] || { echo "helm: $f has no value set in $chart/ci/"; failed=1; }
  done
fi

# Values the chart refuses, each with the message that names the problem.
refuse() {
  local want="$1"; shift
  if helm template sluice "$chart" "$@" >/dev/null 2>"$tmp/err"; then
    echo "helm template $* rendered; want the error: $want"; failed=1
  elif ! grep -qF -- "$want" "$tmp/err"; then
    echo "helm template $*: want the error \"$want\", got:"; cat "$tmp/err"; failed=1
  fi
}
refuse "gateway.tls.enabled needs gateway.tls.secretName" --set gateway.tls.enabled=true
refuse "gateway.tls.clientAuth other than none needs gateway.tls.clientCASecret" \
  --set gateway.tls.enabled=true --set gateway.tls.secretName=edge --set gateway.tls.clientAuth=require
refuse "redis: set redis.addr or redis.clusterAddrs" --set redis.bundled.enabled=false
refuse "nats: set nats.url" --set nats.bundled.enabled=false
refuse "redis.username and redis.tls need your own Redis" --set redis.username=sluice --set redis.auth.existingSecret=r
refuse "nats.auth and nats.tls need your own NATS" --set nats.auth.existingSecret=creds
refuse "syncer: set syncer.adminToken.secretName or syncer.adminTokensFile.secretName" --set syncer.adminToken.secretName=
refuse "analytics: set analytics.token.secretName or analytics.tokensFile.secretName" --set analytics.token.secretName=
refuse "nats.bundled.replicas: 1, or 3 or more" --set nats.bundled.replicas=2

[ "$failed" -eq 0 ] && echo "helm: chart ok (lint, template of $(ls "$chart"/ci/*-values.yaml | wc -l) value sets, refusals)"
exit "$failed"
