#!/usr/bin/env bash
# Stops everything the lab started. Leaves no lab process running and no lab port held.
set -uo pipefail
. "$(dirname "$0")/common.sh"
for (( i=${#LAB_COMPONENTS[@]}-1; i>=0; i-- )); do
  c=${LAB_COMPONENTS[$i]}
  if [ -x "$REPO_ROOT/lab/$c/down.sh" ]; then
    log "stopping $c"
    "$REPO_ROOT/lab/$c/down.sh" || log "warning: $c/down.sh failed"
  fi
done
if [ -x "$KWOK_BIN/kwokctl" ]; then
  kwokctl delete cluster --name "$LAB_CLUSTER" >/dev/null 2>&1 || true
fi
# Whatever kwokctl missed (e.g. after a crash): processes started from the lab's binaries
# or working in the lab's folder.
for pat in "$KUBE_BIN/" "$ETCD_BIN/" "$KWOK_BIN/" "$KWOK_WORKDIR/"; do
  pkill -f -- "$pat" 2>/dev/null || true
done
sleep 0.5
for pat in "$KUBE_BIN/" "$ETCD_BIN/" "$KWOK_BIN/" "$KWOK_WORKDIR/"; do
  pkill -9 -f -- "$pat" 2>/dev/null || true
done
rm -f "$KUBECONFIG"
log "lab down"
