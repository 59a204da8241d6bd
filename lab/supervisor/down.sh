#!/usr/bin/env bash
# Stops the supervisor and every runtime process it started. Idempotent. Leaves no process of
# the supervisor's running and no port held.
set -uo pipefail
. "$(dirname "$0")/common.sh"
if pid=$(sup_pid); then
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null; fi
  echo "supervisor: stopped (pid $pid)"
fi
rm -f "$SUP_PIDFILE"
# Runtime processes whose supervisor died without cleaning up.
for attempt in TERM KILL; do
  pids=$(lab_runtime_pids)
  [ -n "$pids" ] || break
  for p in $pids; do kill "-$attempt" "$p" 2>/dev/null; done
  for _ in $(seq 1 30); do [ -n "$(lab_runtime_pids)" ] || break; sleep 0.1; done
done
rm -f "$POD_PID_DIR"/*.pid
rm -rf "$LAB_DIR/run/pods"
[ -d "$(dirname "$TARGETS")" ] && echo '[]' >"$TARGETS"
left=$(lab_runtime_pids)
if [ -n "$left" ] || sup_pid >/dev/null; then
  echo "supervisor: processes still running: $left $(sup_pid)" >&2
  exit 1
fi
exit 0
