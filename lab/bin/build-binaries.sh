#!/usr/bin/env bash
# Builds the lab's control plane from Go modules at pinned versions into a cache folder
# outside the repo, one folder per component and version. Reuses what is already there.
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubectl  <- k8s.io/kubernetes
#   etcd                                                              <- go.etcd.io/etcd/server/v3
#   kwok, kwokctl                                                     <- sigs.k8s.io/kwok
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../versions.env
. "$here/versions.env"
CACHE=${VERITAS_LAB_CACHE:-$HOME/.cache/veritas-lab}
export GOFLAGS="${GOFLAGS:-} -trimpath"
export CGO_ENABLED=0
mkdir -p "$CACHE"
log() { printf '[build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

k8s_dir="$CACHE/kubernetes-$KUBE_VERSION"
etcd_dir="$CACHE/etcd-$ETCD_VERSION"
kwok_dir="$CACHE/kwok-$KWOK_VERSION"

have_all() { local d=$1; shift; for b in "$@"; do [ -e "$d/$b" ] || return 1; done; }

build_kubernetes() {
  local bins=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
  if have_all "$k8s_dir" "${bins[@]}"; then log "kubernetes $KUBE_VERSION cached in $k8s_dir"; return; fi
  log "building kubernetes $KUBE_VERSION (several minutes per binary)"
  local work; work=$(mktemp -d); trap 'rm -rf "$work"' RETURN
  local staging="v0${KUBE_VERSION#v1}"   # v1.36.3 -> v0.36.3
  (cd "$work"
   go mod init veritas.lab/kubebuild >/dev/null 2>&1
   local modfile; modfile=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
   # k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with
   # ./staging paths that a dependent module cannot see: point each at its published tag.
   grep -oE '^\s*k8s\.io/[a-z0-9-]+ => \./staging' "$modfile" | awk '{print $1}' | while read -r m; do
     if go list -m "$m@$staging" >/dev/null 2>&1; then go mod edit -replace "$m=$m@$staging"; fi
   done
   go mod edit -require "k8s.io/kubernetes@$KUBE_VERSION"
   cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
   go mod tidy >/dev/null
   local minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
   local ld="-s -w"
   for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
     ld="$ld -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
   done
   mkdir -p "$k8s_dir.tmp"
   for b in "${bins[@]}"; do
     log "  go build $b"
     go build -ldflags "$ld" -o "$k8s_dir.tmp/$b" "k8s.io/kubernetes/cmd/$b"
   done)
  rm -rf "$k8s_dir"; mv "$k8s_dir.tmp" "$k8s_dir"
}

build_etcd() {
  if have_all "$etcd_dir" etcd; then log "etcd $ETCD_VERSION cached in $etcd_dir"; return; fi
  log "building etcd $ETCD_VERSION"
  local work; work=$(mktemp -d); trap 'rm -rf "$work"' RETURN
  (cd "$work"
   go mod init veritas.lab/etcdbuild >/dev/null 2>&1
   # etcd's server module replaces its siblings with ../ paths; require their published tags.
   for m in go.etcd.io/etcd/server/v3 go.etcd.io/etcd/api/v3 go.etcd.io/etcd/client/pkg/v3 go.etcd.io/etcd/client/v3 go.etcd.io/etcd/pkg/v3; do
     go mod edit -require "$m@$ETCD_VERSION"
   done
   printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' > tools.go
   go mod tidy >/dev/null
   mkdir -p "$etcd_dir.tmp"
   go build -ldflags "-s -w" -o "$etcd_dir.tmp/etcd" go.etcd.io/etcd/server/v3)
  rm -rf "$etcd_dir"; mv "$etcd_dir.tmp" "$etcd_dir"
}

build_kwok() {
  if have_all "$kwok_dir" kwok kwokctl stages/pod-ready.yaml; then log "kwok $KWOK_VERSION cached in $kwok_dir"; return; fi
  log "building kwok $KWOK_VERSION"
  mkdir -p "$kwok_dir.tmp/stages"
  for b in kwok kwokctl; do
    GOBIN="$kwok_dir.tmp" go install -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/$b@$KWOK_VERSION"
  done
  # With the Stage CRD enabled kwokctl installs no stages: keep kwok's defaults (node
  # initialize + lease heartbeat, fast pod lifecycle) of this version beside its binaries.
  local src; src=$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  cp "$src/kustomize/stage/node/fast/node-initialize.yaml" \
     "$src/kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml" \
     "$src"/kustomize/stage/pod/fast/pod-*.yaml "$kwok_dir.tmp/stages/"
  chmod -R u+w "$kwok_dir.tmp/stages"
  rm -rf "$kwok_dir"; mv "$kwok_dir.tmp" "$kwok_dir"
}

start=$(date +%s)
build_kwok
build_etcd
build_kubernetes
log "done in $(( $(date +%s) - start ))s; cache: $CACHE"
