#!/usr/bin/env bash
# Starts the runtime supervisor in the background. Idempotent: a running one is kept.
set -euo pipefail
. "$(dirname "$0")/common.sh"
mkdir -p "$LAB_DIR/run" "$LAB_DIR/logs"
if pid=$(sup_pid); then
  echo "supervisor: already running (pid $pid)"
  exit 0
fi
[ -s "$KUBECONFIG" ] || { echo "supervisor: no kubeconfig at $KUBECONFIG (is the lab up?)" >&2; exit 1; }
rm -f "$SUP_PIDFILE"
# Its own session, so that it outlives the shell that started it; it writes its pid file once
# it has cleared processes a dead predecessor may have left.
setsid "$LAB_PY" "$SUP_PY" >>"$SUP_LOG" 2>&1 </dev/null &
for _ in $(seq 1 100); do
  if pid=$(sup_pid); then
    echo "supervisor: started (pid $pid), log $SUP_LOG, targets $TARGETS"
    exit 0
  fi
  sleep 0.1
done
echo "supervisor: did not start; last lines of $SUP_LOG:" >&2
tail -n 20 "$SUP_LOG" >&2
exit 1
